r"""Draws view pairs as training samples them: both boxes on the original, and the two views.

  python scripts/inspect_views.py --config configs/demo.py \
      --config.data.path=runs/demo/data/images --out runs/demo/views.png --num 8

Each row: the original image with box 1 (orange) and box 2 (cyan), their IoU, the flips and
whether the pair fell back to v' = v; then view 1 and view 2 after augmentation, de-normalised.
The examples come from pipeline.make_examples, the code path of training.
"""

import os

from absl import app
from absl import flags
from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageDraw
import tensorflow as tf

from multisiam_tf import cli
from multisiam_tf import config as config_lib
from multisiam_tf.data import augment
from multisiam_tf.data import boxes
from multisiam_tf.data import pipeline
from multisiam_tf.data import sources
from multisiam_tf.data import views

_CONFIG = config_lib.define_config_flag('config')
_OUT = flags.DEFINE_string('out', 'views.png', 'PNG file to write.')
_NUM = flags.DEFINE_integer('num', 8, 'Number of images (rows).', lower_bound=1)

_COLOURS = ((255, 140, 0), (0, 220, 255))  # box 1, box 2
_ROW_HEIGHT = 224
_CAPTION = 16  # px of text above each row


def _denormalize(view):
  pixels = np.asarray(view) * np.array(augment.STD) + np.array(augment.MEAN)
  return Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255 + 0.5).astype(np.uint8))


def _row(key, encoded, example):
  """One row: the annotated original, then view 1 and view 2, all _ROW_HEIGHT px high."""
  original = Image.fromarray(views.decode_rgb(encoded).numpy())
  scale = _ROW_HEIGHT / original.height
  original = original.resize((max(round(original.width * scale), 1), _ROW_HEIGHT))
  draw = ImageDraw.Draw(original)
  for name, colour in zip(('box1', 'box2'), _COLOURS):
    y1, x1, y2, x2 = example[name].numpy() * ([original.height, original.width] * 2)
    draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=2)
  iou = float(boxes.iou(example['box1'], example['box2']))
  caption = (f'{os.path.basename(key.numpy().decode())}  IoU {iou:.2f}  '
             f'flip {bool(example["flip1"])}/{bool(example["flip2"])}'
             + ('  FALLBACK' if bool(example['fallback']) else ''))
  tiles = [original] + [_denormalize(example[v]).resize((_ROW_HEIGHT, _ROW_HEIGHT))
                        for v in ('view1', 'view2')]
  row = Image.new('RGB', (sum(t.width for t in tiles) + 8 * (len(tiles) - 1),
                          _ROW_HEIGHT + _CAPTION), 'white')
  x = 0
  for tile in tiles:
    row.paste(tile, (x, _CAPTION))
    x += tile.width + 8
  ImageDraw.Draw(row).text((2, 2), caption, fill='black')
  return row


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = cli.config_or_exit(_CONFIG)
  inputs = sources.from_config(config.data)
  examples = pipeline.make_examples(config.data, inputs, seed=config.seed, with_source=True)
  rows = [_row(*element) for element in examples.take(_NUM.value)]
  sheet = Image.new('RGB', (max(r.width for r in rows), sum(r.height for r in rows)), 'white')
  y = 0
  for row in rows:
    sheet.paste(row, (0, y))
    y += row.height
  tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(_OUT.value)))
  sheet.save(_OUT.value)
  logging.info('wrote %d view pairs from %s to %s', len(rows), config.data.path, _OUT.value)


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  cli.run(main)
