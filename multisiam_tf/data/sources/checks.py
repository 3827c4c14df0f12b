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


def _jpeg_frame_size(encoded):
  """(height, width, scan) of the JPEG: the size in its frame header (its SOF segment), found by
  walking the segments after SOI up to the scan, (-1, -1) without one; and whether a scan (SOS
  marker) follows. Unlike tf.io.extract_jpeg_shape, it never raises, so a broken header is
  reported by name like any other problem."""
  length = tf.strings.length(encoded)

  def segment(position):  # the marker at `position` and the 7 bytes after it, zero-padded
    head = tf.io.decode_raw(tf.strings.substr(encoded, position, 9), tf.uint8, fixed_length=9)
    return tf.cast(head, tf.int32)

  def walking(position, height, width, scan):
    return position + 9 <= length

  def step(position, height, width, scan):
    b = segment(position)
    marker = tf.where(b[0] == 0xFF, b[1], -1)  # -1: a stray byte, skipped as libjpeg does
    frame = (marker >= 0xC0) & (marker <= 0xCF) & (marker != 0xC4) & (marker != 0xC8) & (
        marker != 0xCC) & (height < 0)  # the first of SOF0-15 less DHT, JPG and DAC
    height = tf.where(frame, b[5] * 256 + b[6], height)
    width = tf.where(frame, b[7] * 256 + b[8], width)
    scan = marker == 0xDA
    ends = scan | (marker == 0xD9)  # at the scan or the end
    fill = (marker == 0xFF) | (marker < 0)  # padding before a marker, or a stray byte
    position = tf.where(ends, length, tf.where(fill, position + 1,
                                               position + 2 + b[2] * 256 + b[3]))
    return position, height, width, scan

  _, height, width, scan = tf.while_loop(
      walking, step, (tf.constant(2), tf.constant(-1), tf.constant(-1), tf.constant(False)))
  return height, width, scan


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
    def size():
      height, width, scan = _jpeg_frame_size(encoded)
      return tf.case(
          [(height <= 0, lambda: tf.constant('JPEG without a frame header (SOF marker) before '
                                             'its image data')),
           (tf.logical_not(scan), lambda: tf.constant('JPEG without image data: no scan (SOS '
                                                      'marker) after its frame header'))],
          default=lambda: _size_problem(height, width, min_image_size), exclusive=False)
    return tf.cond(_contains(tail, b'\xff\xd9'), size,
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
