"""Exports of a run's online backbone: serving, model_garden, detectron2, keras_weights."""

import tensorflow as tf


def claim(path, overwrite=False):
  """Frees `path` (a file, a folder or a checkpoint prefix) for an export: an existing export
  there is refused with FileExistsError, or removed when `overwrite`."""
  existing = tf.io.gfile.glob(path) + tf.io.gfile.glob(path + '.*')
  if existing and not overwrite:
    raise FileExistsError(f'{path} already holds an export ({existing[0]}); pass --overwrite to '
                          'replace it, or --out for another place')
  for p in existing:
    if tf.io.gfile.isdir(p):
      tf.io.gfile.rmtree(p)
    else:
      tf.io.gfile.remove(p)
