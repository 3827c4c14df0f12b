"""Cheap checks of encoded images, before anything decodes them: header and end marker only."""

import tensorflow as tf

_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_TAIL_BYTES = 64  # where the end marker is searched: some writers pad after it


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


def problem(encoded, read_problem, min_image_size):
  """What a reader found wrong with the record (a missing field), else image_problem."""
  return tf.cond(tf.equal(read_problem, ''),
                 lambda: image_problem(encoded, min_image_size), lambda: read_problem)
