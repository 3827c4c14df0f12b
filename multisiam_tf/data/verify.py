"""A pass over a run's inputs that decodes each one: every input that training would stop at
(or skip, with data.skip_corrupt), named before a long run starts (scripts/check_data.py).

Training checks headers only, and a decoder's error names no file; here each image is also
decoded, inside a one-element dataset under ignore_errors (tf.data's only try in a graph), and
those it drops are decoded once more, eagerly, for the decoder's own words.
"""

import tensorflow as tf

from multisiam_tf.data import sources
from multisiam_tf.data import views


def check(data, inputs):
  """Yields (key, problem) of every input in file order; the problem is '' for a good one.

  Args:
    data: the `data` part of a config: `format`, `min_image_size` and the reader's fields.
    inputs: sources.Inputs, the files to read.
  """
  ds = sources.read(tf.data.Dataset.from_tensor_slices(list(inputs.files)), inputs)

  def examine(key, encoded, read_problem):
    problem = sources.problem(encoded, read_problem, data.min_image_size)
    decoded = tf.cond(tf.equal(problem, ''), lambda: _decodes(encoded), lambda: True)
    bad = tf.not_equal(problem, '') | tf.logical_not(decoded)
    return key, tf.where(bad, encoded, ''), problem, bad  # only bad bytes leave the graph
  checked = ds.map(examine, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  for key, encoded, problem, bad in checked.prefetch(tf.data.AUTOTUNE):
    yield key.numpy().decode(), (problem.numpy().decode() or _decoder_error(encoded)) if bad else ''


def _decodes(encoded):
  tried = tf.data.Dataset.from_tensors(encoded).map(
      lambda encoded: tf.size(views.decode_rgb(encoded)) > 0).ignore_errors()
  return tried.concatenate(tf.data.Dataset.from_tensors(False)).take(1).get_single_element()


def _decoder_error(encoded):
  try:
    views.decode_rgb(encoded)
  except tf.errors.OpError as e:
    return f'the decoder rejects it: {e.message.split(" [Op:")[0].split("}} ")[-1]}'
  return 'the decoder rejects it in a graph, not eagerly'
