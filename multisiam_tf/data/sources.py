"""Where training images come from: the input files named by `data.path`, read as (key, bytes).

`list_inputs` turns `data.path` (a folder searched recursively, a glob, or comma-separated globs)
and `data.format` into a sorted file list; `read` turns a dataset of those files into a dataset of
`(key, encoded image)` pairs, where `key` names the file (and record) for error messages.
`image_problem` checks encoded bytes cheaply, before anything decodes them.

A new source (Waymo frames, SODA10M, BDD100K, Cityscapes) is one reader function from a dataset of
file names to `(key, encoded)` pairs, added to READERS, plus its file pattern in _FOLDER_MATCHERS.
"""

import os
from typing import NamedTuple

import tensorflow as tf

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
TFRECORD_IMAGE_KEY = 'image/encoded'  # TF Model Garden's and the Object Detection API's key

_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_TAIL_BYTES = 64  # where the end marker is searched: some writers pad after it


class Inputs(NamedTuple):
  files: tuple  # sorted, unique paths
  format: str  # a key of READERS


def _is_image(path):
  return path.lower().endswith(IMAGE_EXTENSIONS)


def _is_tfrecord(path):
  return 'tfrecord' in os.path.basename(path).lower()


_FOLDER_MATCHERS = {'folder': _is_image, 'tfrecord': _is_tfrecord}


def _walk(folder):
  for root, _, names in tf.io.gfile.walk(folder):
    for name in names:
      if not name.startswith('.'):
        yield os.path.join(root, name)


def _from_folder(folder, data_format):
  """Files of `data_format` under `folder`; with 'auto', images if any, else TFRecords."""
  files = list(_walk(folder))
  formats = list(_FOLDER_MATCHERS) if data_format == 'auto' else [data_format]
  for name in formats:
    matched = [f for f in files if _FOLDER_MATCHERS[name](f)]
    if matched:
      return matched, name
  wanted = {'folder': 'images (' + ', '.join(IMAGE_EXTENSIONS) + ')',
            'tfrecord': 'TFRecord files (names containing "tfrecord")'}
  raise ValueError(f'data.path: folder {folder!r} holds no '
                   + ' and no '.join(wanted[name] for name in formats)
                   + ' (searched recursively)')


def _from_glob(pattern, data_format):
  """Files matching `pattern`; with 'auto', the format follows from their extensions."""
  files = [f for f in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(f)]
  if not files:
    if not any(c in pattern for c in '*?['):
      raise ValueError(f'data.path: {pattern!r} does not exist')
    raise ValueError(f'data.path: glob {pattern!r} matches no files')
  if data_format != 'auto':
    return files, data_format
  images = [f for f in files if _is_image(f)]
  if len(images) == len(files):
    return files, 'folder'
  if not images:
    return files, 'tfrecord'
  other = next(f for f in files if not _is_image(f))
  raise ValueError(f'data.path: glob {pattern!r} matches both images ({images[0]!r}) and other '
                   f'files ({other!r}); narrow the glob or set data.format')


def list_inputs(path, data_format='auto'):
  """Resolves `data.path` and `data.format` ('auto', 'folder' or 'tfrecord') to Inputs.

  Raises ValueError naming the path when it is empty, missing, matches nothing, holds no inputs,
  or mixes formats.
  """
  if data_format not in ('auto', *READERS):
    raise ValueError(f'data.format is {data_format!r}; it must be auto or one of {list(READERS)}')
  parts = [p.strip() for p in path.split(',') if p.strip()]
  if not parts:
    raise ValueError('data.path is empty; set it to a folder, a glob or comma-separated globs, '
                     'e.g. --config.data.path=/data/images')
  files, formats = set(), set()
  for part in parts:
    if tf.io.gfile.isdir(part):
      matched, found_format = _from_folder(part, data_format)
    else:
      matched, found_format = _from_glob(part, data_format)
    files.update(matched)
    formats.add(found_format)
  if len(formats) > 1:
    raise ValueError(f'data.path {path!r} mixes formats {sorted(formats)}; set data.format')
  return Inputs(tuple(sorted(files)), formats.pop())


def read_image_files(files):
  """A dataset of image file names -> (file name, file bytes)."""
  return files.map(lambda f: (f, tf.io.read_file(f)), num_parallel_calls=tf.data.AUTOTUNE)


def _parse_example(serialized):
  features = {TFRECORD_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, default_value='')}
  return tf.io.parse_single_example(serialized, features)[TFRECORD_IMAGE_KEY]


def read_tfrecords(files):
  """A dataset of TFRecord file names -> ('file:record index', tf.train.Example image bytes).

  A record without `image/encoded` yields empty bytes, which image_problem reports by its key.
  """
  def records(f):
    return tf.data.TFRecordDataset(f).enumerate().map(
        lambda i, serialized: (tf.strings.join([f, tf.strings.as_string(i)], ':'),
                               _parse_example(serialized)))
  return files.interleave(records, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


READERS = {'folder': read_image_files, 'tfrecord': read_tfrecords}


def read(files, data_format):
  """A dataset of input file names -> (key, encoded image) with the reader of `data_format`."""
  return READERS[data_format](files)


def _contains(data, pattern):
  """Whether uint8 vector `data` contains the byte string `pattern`."""
  starts = tf.maximum(tf.size(data) - len(pattern) + 1, 0)
  found = tf.ones([starts], tf.bool)
  for k, byte in enumerate(pattern):
    found &= tf.equal(data[k:starts + k], byte)
  return tf.reduce_any(found)


def _size_problem(height, width, min_image_size):
  return tf.cond(
      tf.minimum(height, width) < min_image_size,
      lambda: tf.strings.format('image of {}x{} px (width x height) is under data.min_image_size '
                                '= {} px', (width, height, min_image_size)),
      lambda: tf.constant(''))


def image_problem(encoded, min_image_size):
  """'' when `encoded` is a whole JPEG or PNG of at least min_image_size px a side, else why not.

  Reads only the header and the last bytes (graph ops, no decoding): a file that is no image, a
  JPEG without its end-of-image marker or a PNG without its IEND chunk (both: truncated), and an
  image too small to crop are caught before a decoder fails without naming the file.
  """
  length = tf.strings.length(encoded)
  tail = tf.io.decode_raw(
      tf.strings.substr(encoded, tf.maximum(length - _TAIL_BYTES, 0), _TAIL_BYTES), tf.uint8)

  def jpeg():
    return tf.cond(
        _contains(tail, b'\xff\xd9'),
        lambda: _size_problem(*tf.unstack(tf.io.extract_jpeg_shape(encoded)[:2]),
                              min_image_size),
        lambda: tf.constant('truncated JPEG: no end-of-image marker'))

  def png():
    def size():  # IHDR: width, height as big-endian uint32 at bytes 16..23
      ihdr = tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.int32, little_endian=False)
      return _size_problem(ihdr[1], ihdr[0], min_image_size)
    return tf.cond(_contains(tail, b'IEND') & (length >= 33), size,
                   lambda: tf.constant('truncated PNG: no IEND chunk'))

  return tf.case(
      [(tf.strings.substr(encoded, 0, 3) == _JPEG_MAGIC, jpeg),
       (tf.strings.substr(encoded, 0, 8) == _PNG_MAGIC, png)],
      default=lambda: tf.strings.format('not a JPEG or PNG file ({} bytes)', length),
      exclusive=False)
