r"""Dense linear probe of a frozen backbone on a labelled folder: prints per-class IoU, writes JSON.

  python scripts/probe.py --workdir runs/demo --data runs/demo/data --num_classes 9 \
      --size 96 144 --baseline --out runs/demo/probe.json
  python scripts/probe.py --random_init --depth 18 --width 0.5 --output_stride 16 \
      --data ../shared/data/camvid_val --train_fraction 0.5 --num_classes 11 --size 180 240

  python scripts/probe.py --workdir runs/w1 --format cityscapes --train /data/cityscapes \
      --val /data/cityscapes --size 256 512

--format folder (default) reads images/NAME.png|jpg with labels/NAME.png (class id per pixel);
camvid, cityscapes, bdd100k and waymo_v1 read those datasets' published layouts (--train_split,
--val_split) and bring their classes and ignore value (eval/labelled.py). Label values
>= --num_classes and --ignore_index are ignored. --baseline adds a random-init backbone of the
same architecture, probed with the same seed.
"""

from absl import app
from absl.flags import argparse_flags

from multisiam_tf.eval import labelled
from multisiam_tf.eval import probe


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  probe.add_backbone_arguments(parser, 'of --random_init, or of --baseline beside --saved_model')
  parser.add_argument('--baseline', action='store_true',
                      help='also probe a random-init backbone of the same architecture')
  data = parser.add_mutually_exclusive_group(required=True)
  data.add_argument('--data', help='one labelled folder, split by --train_fraction')
  data.add_argument('--train', help='labelled training folder (with --val)')
  parser.add_argument('--val', help='labelled evaluation folder (with --train)')
  parser.add_argument('--format', default='folder', choices=labelled.FORMATS,
                      help='layout of the labelled data (eval/labelled.py)')
  parser.add_argument('--train_split', default='train', help='split of --train (or --data)')
  parser.add_argument('--val_split', default='val', help='split of --val')
  parser.add_argument('--train_fraction', type=float, default=0.5,
                      help='first part of --data (in name order) to train on; the rest is val')
  parser.add_argument('--limit', type=int, help='use only the first N images of each folder')
  parser.add_argument('--num_classes', type=int,
                      help='class ids 0..N-1 count; larger label values are ignored (default: '
                      "the dataset's; --format folder needs it)")
  parser.add_argument('--ignore_index', type=int,
                      help="label value to ignore (default: the dataset's, 255 for a folder)")
  parser.add_argument('--size', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'),
                      help='images (bilinear) and labels (nearest) are resized to this')
  parser.add_argument('--use_c4', action='store_true', help='concatenate C4 with resized C5')
  parser.add_argument('--lr', type=float, default=1e-2)
  parser.add_argument('--epochs', type=int, default=30)
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', help='JSON file for the scores')
  args = parser.parse_args(argv[1:])
  if bool(args.train) != bool(args.val):
    parser.error('--train and --val go together')
  if args.format == 'folder' and args.num_classes is None:
    parser.error('--format folder needs --num_classes')
  if args.baseline and args.random_init:
    parser.error('--baseline compares with a random init; --random_init already is one')
  return args


def main(args):
  size = tuple(args.size)
  train_path = args.data or args.train
  found = labelled.dataset(train_path, args.format, args.train_split)
  num_classes = args.num_classes or found.num_classes
  ignore_index = found.ignore_index if args.ignore_index is None else args.ignore_index
  train = labelled.arrays(found, size, args.limit)
  if args.data:
    train, val = labelled.split(*train, args.train_fraction)
  else:
    val = labelled.load(args.val, size, args.limit, args.format, args.val_split)
  names = labelled.name_list(found.class_names, num_classes)
  architecture = (args.depth, args.width, args.output_stride)
  features, architecture = probe.load_features(args.workdir, args.step, args.saved_model,
                                               architecture, args.seed)
  options = dict(num_classes=num_classes, ignore_index=ignore_index,
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
