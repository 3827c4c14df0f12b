r"""Writes the built-in synthetic street scenes with class and instance masks.

  python scripts/make_demo_data.py --out runs/demo/data --num 64 --size 160 240

Layout (CamVid's, so the dense probe reads it): images/NNNNN.png, labels/NNNNN.png (class id per
pixel), instances/NNNNN.png (instance id per pixel) and classes.txt.
"""

from absl import app
from absl import flags
from absl import logging

from multisiam_tf import cli
from multisiam_tf.data import synthetic

_OUT = flags.DEFINE_string('out', None, 'Folder to write into.', required=True)
_NUM = flags.DEFINE_integer('num', 64, 'Number of scenes.', lower_bound=1)
_SIZE = flags.DEFINE_list('size', ['160', '240'], 'Scene height and width: --size H W or H,W.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed; the same seed writes the same scenes.')


def _parse_flags(argv):
  """absl flags take one value; `--size H W` (as the Makefile writes it) becomes --size=H,W."""
  if '--size' in argv:
    i = argv.index('--size')
    argv = argv[:i] + ['--size=' + ','.join(argv[i + 1:i + 3])] + argv[i + 3:]
  return flags.FLAGS(argv)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if len(_SIZE.value) != 2:
    raise app.UsageError(f'--size takes a height and a width, got {_SIZE.value}')
  height, width = (int(v) for v in _SIZE.value)
  paths = synthetic.write_dataset(_OUT.value, _NUM.value, height, width, _SEED.value)
  logging.info('wrote %d scenes of %dx%d px to %s', len(paths), width, height, _OUT.value)


if __name__ == '__main__':
  cli.run(main, flags_parser=_parse_flags)
