r"""Draws K-means clusters of a backbone's C5 map over images, beside the originals (paper Fig. 6).

  python scripts/visualize.py --workdir runs/demo --images runs/demo/data --num 8 \
      --out runs/demo/clusters.png
  python scripts/visualize.py --random_init --depth 18 --output_stride 16 \
      --images ../shared/data/camvid_val --num 4 --size 180 240 --out /tmp/clusters.png
"""

from absl import app
from absl.flags import argparse_flags
from PIL import Image

from multisiam_tf.eval import labelled
from multisiam_tf.eval import probe
from multisiam_tf.eval import visualize


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  probe.add_backbone_arguments(parser, 'of --random_init or --keras_weights')
  parser.add_argument('--images', required=True, help='folder of images (or with images/)')
  parser.add_argument('--num', type=int, default=8, help='how many images, in name order')
  parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                      help='resize to this (default: the first image\'s size)')
  parser.add_argument('--k', type=int, default=3)
  parser.add_argument('--iterations', type=int, default=10)
  parser.add_argument('--upsampling', default='bilinear', choices=visualize.UPSAMPLING)
  parser.add_argument('--alpha', type=float, default=0.5, help='opacity of the cluster colours')
  parser.add_argument('--columns', type=int, default=2, help='image pairs per row')
  parser.add_argument('--out', required=True, help='PNG to write')
  return parser.parse_args(argv[1:])


def main(args):
  images = labelled.load_images(args.images, args.size, args.num)
  features, _ = probe.load_features(args.workdir, args.step, args.saved_model,
                                    (args.depth, args.width, args.output_stride), args.seed,
                                    args.keras_weights)
  picture = visualize.render(features, images, args.k, args.iterations, args.upsampling,
                             args.alpha, args.columns)
  Image.fromarray(picture).save(args.out)
  height, width = picture.shape[:2]
  print(f'wrote {args.out}: {len(images)} images, K={args.k}, {width}x{height} px')


if __name__ == '__main__':
  app.run(main, flags_parser=parse)
