"""File names: which are images, TFRecords or parquet files; folders walked, globs matched."""

import os
import struct

import tensorflow as tf

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def is_image(path):
  return path.lower().endswith(IMAGE_EXTENSIONS)


def is_tfrecord(path):
  return 'tfrecord' in os.path.basename(path).lower()


def is_parquet(path):
  return path.lower().endswith('.parquet')


def walk(folder):
  """Every file below `folder`, hidden ones left out."""
  for root, _, names in tf.io.gfile.walk(folder):
    for name in names:
      if not name.startswith('.'):
        yield os.path.join(root, name)


def glob(pattern):
  """The files (not folders) matching `pattern`; ValueError naming it when there are none."""
  files = [f for f in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(f)]
  if not files:
    if not any(c in pattern for c in '*?['):
      raise ValueError(f'data.path: {pattern!r} does not exist')
    raise ValueError(f'data.path: glob {pattern!r} matches no files')
  return files


def first_record(path):
  """The first record of TFRecord file `path`, or None when it has none or is no TFRecord."""
  try:
    for record in tf.data.TFRecordDataset(path).take(1):
      return record.numpy()
  except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
    pass
  return None


def record_offsets(path):
  """Byte offsets of the records of TFRecord file `path`, from the length headers alone."""
  offsets = []
  with tf.io.gfile.GFile(path, 'rb') as f:
    size, position = f.size(), 0
    while position < size:
      f.seek(position)
      header = f.read(12)  # uint64 length, uint32 masked crc of the length
      end = position + 12 + (struct.unpack('<Q', header[:8])[0] if len(header) == 12 else size)
      if end + 4 > size:  # the data, then its uint32 crc
        raise ValueError(f'{path}: truncated TFRecord: record {len(offsets)} at byte {position} '
                         f'ends past the end of the file ({size} bytes)')
      offsets.append(position)
      position = end + 4
  return offsets


def read_record(path, offset):
  """The data of the TFRecord record starting at byte `offset` of `path` (crc not checked)."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    f.seek(offset)
    (length,) = struct.unpack('<Q', f.read(12)[:8])
    return f.read(length)
