"""TFRecords of tf.train.Example with the encoded image under one key (`image/encoded`)."""

import tensorflow as tf
from google.protobuf import message

TFRECORD_IMAGE_KEY = 'image/encoded'  # TF Model Garden's and the Object Detection API's key
_RECORD_FRAMING = 16  # bytes around each record: its length (8) and two CRCs (4 + 4)
TRUNCATED = 'truncated TFRecord'  # begins the problem of a file that ends inside a record


def _parse(serialized, image_key):
  features = {image_key: tf.io.FixedLenFeature([], tf.string, default_value='')}
  return tf.io.parse_single_example(serialized, features)[image_key]


def read_tfrecords(files, image_key=TFRECORD_IMAGE_KEY, all_files=()):
  """A dataset of TFRecord file names -> ('file:record index', image bytes, problem).

  A file of `all_files` that ends inside a record (truncated) gives, after its whole records, an
  element keyed 'file:truncated' whose problem says so: an error naming the file, or with
  data.skip_corrupt the rest of that file skipped and counted. Each file is read once.
  """
  sizes = _file_sizes(all_files)

  def records(f):
    read = tf.data.TFRecordDataset(f).ignore_errors()  # a truncated end: checked at the sentinel
    ended = read.map(lambda r: (r, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(''), True)))
    scan = _record_scan(f, sizes.lookup(f), image_key)
    return ended.scan((tf.constant(0, tf.int64),) * 2, scan).filter(
        lambda *element: element[3]).map(lambda *element: element[:3])
  return files.interleave(records, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _record_scan(f, size, image_key):
  """The scan over file `f`'s records and an end sentinel: (record index, bytes in whole records)
  carried, (key, encoded, problem, keep) emitted; the sentinel is kept, keyed 'f:truncated', only
  when the whole records hold fewer bytes than the file's `size` (-1: not checked)."""
  missing = f'the record has no image bytes under {image_key!r} (missing or empty feature)'

  def scan(state, record):
    (index, whole), (serialized, end) = state, record
    encoded = _parse(serialized, image_key)  # the sentinel '' parses as an empty Example
    # The message is formatted at the sentinel only, not once per record.
    problem = tf.cond(end, lambda: tf.strings.format(
        TRUNCATED + ': its {} bytes end inside a record; only the first {} bytes hold whole '
        'records', (size, whole)), lambda: tf.where(tf.equal(encoded, ''), missing, ''))
    key = tf.strings.join([f, tf.where(end, 'truncated', tf.strings.as_string(index))], ':')
    keep = tf.logical_not(end) | ((size >= 0) & (whole < size))
    whole += tf.cast(tf.strings.length(serialized), tf.int64) + _RECORD_FRAMING
    return (index + 1, whole), (key, encoded, problem, keep)
  return scan


def _file_sizes(paths):
  """A table file name -> its size in bytes (-1 for names not in `paths`)."""
  paths = list(paths) or ['']
  sizes = [tf.io.gfile.stat(p).length if p else -1 for p in paths]
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(paths, tf.constant(sizes, tf.int64)), -1)


def image_keys(record):
  """The bytes features of a serialized tf.train.Example, or None when it is not one."""
  try:
    example = tf.train.Example.FromString(record)
  except message.DecodeError:
    return None
  keys = [k for k, v in example.features.feature.items() if v.WhichOneof('kind') == 'bytes_list']
  return keys or None
