r"""Reads and decodes every input of a run's data once: names each one training would stop at.

  python scripts/check_data.py --config configs/multisiam_waymo.py \
      --config.data.path='/data/waymo/*.tfrecord'        # before a week-long run

Prints each bad input (file, or file:record) with what is wrong, then how many inputs were read
and how many are bad; exits 1 when any is. Training's own checks read headers only (a decoder's
error names no file); this pass decodes every image as well, at about the cost of one epoch of
the input pipeline.
"""

from absl import app
from absl import logging

from multisiam_tf import cli
from multisiam_tf import config as config_lib
from multisiam_tf.data import sources
from multisiam_tf.data import verify

_CONFIG = config_lib.define_config_flag('config')
_EVERY = 10_000  # inputs between progress lines


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  data = cli.config_or_exit(_CONFIG).data
  inputs = sources.from_config(data)
  logging.info('checking the %d %s files of data.path=%s', len(inputs.files), inputs.format,
               data.path)
  bad = count = 0
  for count, (key, problem) in enumerate(verify.check(data, inputs), 1):
    if problem:
      bad += 1
      print(f'{key}: {problem}', flush=True)
    if count % _EVERY == 0:
      logging.info('%d inputs read, %d bad so far', count, bad)
  print(f'{count} inputs read from data.path={data.path}: {bad} bad')
  if bad:
    raise SystemExit(1)


if __name__ == '__main__':
  cli.run(main)
