r"""Dense linear probe of a frozen backbone on a labelled folder: prints per-class IoU, writes JSON.

  python scripts/probe.py --workdir runs/demo --data runs/demo/data --num_classes 9 \
      --size 96 144 --baseline --out runs/demo/probe.json
  python scripts/probe.py --random_init --depth 18 --width 0.5 --output_stride 16 \
      --data ../shared/data/camvid_val --train_fraction 0.5 --num_classes 11 --size 180 240

A folder holds images/NAME.png|jpg and labels/NAME.png (class id per pixel); label values
>= --num_classes (CamVid's 11) and --ignore_index are ignored. --baseline adds a random-init
backbone of the same architecture, probed with the same seed.
"""

from absl import app
from absl.flags import argparse_flags

from multisiam_tf.eval import probe


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  probe.add_backbone_arguments(
      parser, 'of --random_init or --keras_weights, or of --baseline beside --saved_model')
  parser.add_argument('--baseline', action='store_true',
                      help='also probe a random-init backbone of the same architecture')
  probe.add_data_arguments(parser)
  parser.add_argument('--use_c4', action='store_true', help='concatenate C4 with resized C5')
  parser.add_argument('--lr', type=float, default=1e-2)
  parser.add_argument('--epochs', type=int, default=30)
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--out', help='JSON file for the scores')
  args = parser.parse_args(argv[1:])
  probe.check_arguments(parser, args)
  return args


def main(args):
  train, val, names = probe.load_splits(args.size, args.num_classes, args.data, args.train,
                                        args.val, args.train_fraction, args.limit)
  architecture = (args.depth, args.width, args.output_stride)
  features, architecture = probe.load_features(args.workdir, args.step, args.saved_model,
                                               architecture, args.seed, args.keras_weights)
  options = dict(num_classes=args.num_classes, ignore_index=args.ignore_index,
                 use_c4=args.use_c4, lr=args.lr, epochs=args.epochs,
                 batch_size=args.batch_size, seed=args.seed, class_names=names)
  result = probe.run(features, train, val, **options)
  result['architecture'] = dict(zip(('depth', 'width', 'output_stride'), architecture))
  columns = {'random init' if args.random_init else 'pretrained': result}
  if args.baseline:
    baseline = probe.keras_features(probe.random_backbone(architecture, args.seed))
    result['baseline'] = columns['random init'] = probe.run(baseline, train, val, **options)
  print(probe.table(columns))
  if args.out:
    probe.write_json(result, args.out)


if __name__ == '__main__':
  app.run(main, flags_parser=parse)
