"""TFRecords of tf.train.Example with the encoded image under one key (`image/encoded`)."""

import tensorflow as tf
from google.protobuf import message

TFRECORD_IMAGE_KEY = 'image/encoded'  # TF Model Garden's and the Object Detection API's key


def _parse(serialized, image_key):
  features = {image_key: tf.io.FixedLenFeature([], tf.string, default_value='')}
  return tf.io.parse_single_example(serialized, features)[image_key]


def read_tfrecords(files, image_key=TFRECORD_IMAGE_KEY):
  """A dataset of TFRecord file names -> ('file:record index', image bytes, problem)."""
  missing = f'the record has no image bytes under {image_key!r} (missing or empty feature)'

  def records(f):
    def element(i, serialized):
      encoded = _parse(serialized, image_key)
      problem = tf.where(tf.equal(encoded, ''), missing, '')
      return tf.strings.join([f, tf.strings.as_string(i)], ':'), encoded, problem
    return tf.data.TFRecordDataset(f).enumerate().map(element)
  return files.interleave(records, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def image_keys(record):
  """The bytes features of a serialized tf.train.Example, or None when it is not one."""
  try:
    example = tf.train.Example.FromString(record)
  except message.DecodeError:
    return None
  keys = [k for k, v in example.features.feature.items() if v.WhichOneof('kind') == 'bytes_list']
  return keys or None
