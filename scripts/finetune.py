r"""Fine-tunes a backbone with an FCN head on a labelled folder: prints per-class IoU, writes JSON.

  python scripts/finetune.py --workdir runs/demo --baseline --data runs/demo/heldout \
      --num_classes 9 --size 96 144 --steps 300 --out runs/demo/finetune.json
  python scripts/finetune.py --keras_weights runs/w1/exports/keras/1000/backbone.weights.h5 \
      --depth 18 --width 0.5 --output_stride 16 --baseline \
      --train ../shared/data/camvid_train --val ../shared/data/camvid_val \
      --num_classes 11 --ignore_index 11 --size 180 240 --crop 160 160 --steps 600 --out ft.json

Both splits are decoded and resized to --size once; training crops --crop (default --size) from
each image scaled by U(--scale_range), flipped with p 0.5; val is scored at --size. --baseline
adds a random-init backbone of the same architecture, fine-tuned with the same recipe and seed.
"""

from absl import app
from absl.flags import argparse_flags

from multisiam_tf.eval import finetune
from multisiam_tf.eval import probe


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  probe.add_backbone_arguments(parser, 'of --random_init or --keras_weights', saved_model=False)
  parser.add_argument('--baseline', action='store_true',
                      help='also fine-tune a random-init backbone of the same architecture')
  probe.add_data_arguments(parser)
  parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'),
                      help='training crop (default: --size)')
  parser.add_argument('--scale_range', type=float, nargs=2, default=(0.5, 2.0),
                      metavar=('LOW', 'HIGH'), help='scale jitter before the crop')
  parser.add_argument('--use_c4', action='store_true',
                      help='FCN-16s: add a 1x1 classifier on C4 to the C5 scores')
  parser.add_argument('--head_channels', type=int, default=256,
                      help='channels of the head\'s 3x3 convolution')
  parser.add_argument('--steps', type=int, default=600)
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--lr', type=float, default=0.01)
  parser.add_argument('--weight_decay', type=float, default=5e-4)
  parser.add_argument('--momentum', type=float, default=0.9)
  parser.add_argument('--schedule', default='poly', choices=finetune.SCHEDULES)
  parser.add_argument('--precision', default='float32', choices=finetune.PRECISIONS)
  parser.add_argument('--out', help='JSON file for the scores')
  args = parser.parse_args(argv[1:])
  probe.check_arguments(parser, args)
  return args


def main(args):
  train, val, names = probe.load_splits(args.size, args.num_classes, args.data, args.train,
                                        args.val, args.train_fraction, args.limit)
  backbone, architecture = probe.load_backbone(
      args.workdir, args.step, args.keras_weights, (args.depth, args.width, args.output_stride),
      args.seed)
  options = dict(num_classes=args.num_classes, ignore_index=args.ignore_index,
                 use_c4=args.use_c4, head_channels=args.head_channels, steps=args.steps,
                 batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                 momentum=args.momentum, schedule=args.schedule, crop=args.crop,
                 scale_range=tuple(args.scale_range), precision=args.precision, seed=args.seed,
                 class_names=names)
  result = finetune.run(backbone, architecture, train, val, **options)
  result['architecture'] = dict(zip(('depth', 'width', 'output_stride'), architecture))
  columns = {'random init' if args.random_init else 'pretrained': result}
  if args.baseline:
    baseline = probe.random_backbone(architecture, args.seed)
    result['baseline'] = columns['random init'] = finetune.run(baseline, architecture, train,
                                                               val, **options)
  print(probe.table(columns))
  if args.out:
    probe.write_json(result, args.out)


if __name__ == '__main__':
  app.run(main, flags_parser=parse)
