r"""Exports the online backbone of a training run (docs/EXPORT.md).

  python scripts/export.py --workdir runs/w1 --format saved_model   # saved_models/w1/<step>/
  python scripts/export.py --workdir runs/w1 --format model_garden  # runs/w1/exports/model_garden/
  python scripts/export.py --workdir runs/w1 --format detectron2    # runs/w1/exports/w1-<step>.pkl
  python scripts/export.py --workdir runs/w1 --format keras --step 5000 --out /tmp/w1_keras

--step picks a checkpoint (default: the newest); --out overrides the default place (for
saved_model the model's base folder: the export lands in <out>/<step>/, TF Serving's layout).
An existing export is refused unless --overwrite.
"""

import os

from absl import app
from absl import logging
from absl.flags import argparse_flags

from multisiam_tf import export as exports
from multisiam_tf.export import detectron2
from multisiam_tf.export import keras_weights
from multisiam_tf.export import model_garden
from multisiam_tf.export import serving
from multisiam_tf.train import checkpoints

FORMATS = ('saved_model', 'model_garden', 'detectron2', 'keras')


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='training run (config.json, checkpoints)')
  parser.add_argument('--step', type=int, help='checkpoint step (default: the newest)')
  parser.add_argument('--format', required=True, choices=FORMATS)
  parser.add_argument('--out', help='output folder (a .pkl file for detectron2)')
  parser.add_argument('--overwrite', action='store_true', help='replace an existing export')
  parser.add_argument('--image_size', type=int,
                      help='serving_default resize (default: the run\'s data.image_size)')
  return parser.parse_args(argv[1:])


def default_out(workdir, fmt, step):
  run = os.path.basename(os.path.normpath(workdir))
  return {'saved_model': os.path.join('saved_models', run),
          'model_garden': os.path.join(workdir, 'exports', 'model_garden'),
          'detectron2': os.path.join(workdir, 'exports', f'{run}-{step}.pkl'),
          'keras': os.path.join(workdir, 'exports', 'keras', str(step))}[fmt]


def main(args):
  # Without --step: the newest checkpoint that reads, past a damaged one.
  backbone, config, step = checkpoints.restore_backbone(args.workdir, args.step)
  out = args.out or default_out(args.workdir, args.format, step)
  if args.format == 'saved_model':
    out = os.path.join(out, str(step))  # TF Serving's <model base path>/<version>/
  exports.claim(os.path.join(out, f'ckpt-{step}') if args.format == 'model_garden' else out,
                args.overwrite)
  if args.format == 'saved_model':
    written = serving.export_saved_model(backbone, out, args.image_size or config.data.image_size)
  elif args.format == 'model_garden':
    written = model_garden.export_model_garden(
        backbone, config.model.backbone.depth, config.model.backbone.width, out, step)
  elif args.format == 'detectron2':
    written = detectron2.export_detectron2(backbone, out)
  else:
    written = keras_weights.export_keras(backbone, out)
  logging.info('step %d of %s exported as %s: %s', step, args.workdir, args.format, written)
  print(written)


if __name__ == '__main__':
  app.run(main, flags_parser=parse)
