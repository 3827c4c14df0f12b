"""TFRecords of tf.train.Example with the encoded image under one key (`image/encoded`)."""

import tensorflow as tf
from google.protobuf import message

TFRECORD_IMAGE_KEY = 'image/encoded'  # TF Model Garden's and the Object Detection API's key
_RECORD_FRAMING = 16  # bytes around each record: its length (8) and two CRCs (4 + 4)


def _parse(serialized, image_key):
  features = {image_key: tf.io.FixedLenFeature([], tf.string, default_value='')}
  return tf.io.parse_single_example(serialized, features)[image_key]


def read_tfrecords(files, image_key=TFRECORD_IMAGE_KEY, all_files=()):
  """A dataset of TFRecord file names -> ('file:record index', image bytes, problem).

  A file of `all_files` that ends inside a record (truncated) gives, after its whole records, an
  element keyed 'file:truncated' whose problem says so: an error naming the file, or with
  data.skip_corrupt the rest of that file skipped and counted.
  """
  missing = f'the record has no image bytes under {image_key!r} (missing or empty feature)'
  sizes = _file_sizes(all_files)

  def records(f):
    def element(i, serialized):
      encoded = _parse(serialized, image_key)
      problem = tf.where(tf.equal(encoded, ''), missing, '')
      return tf.strings.join([f, tf.strings.as_string(i)], ':'), encoded, problem
    read = tf.data.TFRecordDataset(f).ignore_errors()  # a truncated end: checked below
    return read.enumerate().map(element).concatenate(_truncation(f, read, sizes))
  return files.interleave(records, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _file_sizes(paths):
  """A table file name -> its size in bytes (-1 for names not in `paths`)."""
  paths = list(paths) or ['']
  sizes = [tf.io.gfile.stat(p).length if p else -1 for p in paths]
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(paths, tf.constant(sizes, tf.int64)), -1)


def _truncation(f, read, sizes):
  """One (key, '', problem) element when file `f` holds fewer bytes in whole records than it has,
  else none; the whole records' bytes are summed over a second read of the file."""
  whole = read.reduce(tf.constant(0, tf.int64), lambda total, record: (
      total + tf.cast(tf.strings.length(record), tf.int64) + _RECORD_FRAMING))
  size = sizes.lookup(f)
  problem = tf.strings.format(
      'truncated TFRecord: its {} bytes end inside a record; only the first {} bytes hold whole '
      'records', (size, whole))
  element = (tf.strings.join([f, 'truncated'], ':'), tf.constant(''), problem)
  return tf.data.Dataset.from_tensors(element).filter(lambda *_: (size >= 0) & (whole < size))


def image_keys(record):
  """The bytes features of a serialized tf.train.Example, or None when it is not one."""
  try:
    example = tf.train.Example.FromString(record)
  except message.DecodeError:
    return None
  keys = [k for k, v in example.features.feature.items() if v.WhichOneof('kind') == 'bytes_list']
  return keys or None
