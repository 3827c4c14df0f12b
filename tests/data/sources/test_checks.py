"""The header checks, on encoded images made here."""

import io

import numpy as np
from PIL import Image
import tensorflow as tf

from multisiam_tf.data import sources
from multisiam_tf.data.sources import checks
from sources_testlib import encode, problems, rgb


def test_image_problem_names_what_is_wrong():
  jpeg, png = encode(rgb(), 'JPEG'), encode(rgb(), 'PNG')
  assert problems([
      jpeg, png,
      jpeg + b'\0' * 40,  # padding after the end-of-image marker is allowed
      b'GIF89a' + b'\0' * 100,
      b'',
      jpeg[:len(jpeg) // 2],
      png[:len(png) // 2],
      encode(rgb(6, 40), 'JPEG'),
      encode(rgb(40, 7), 'PNG'),
  ]) == [
      '', '', '',
      'not a JPEG or PNG file (106 bytes)',
      'not a JPEG or PNG file (0 bytes)',
      'truncated JPEG: no end-of-image marker',
      'truncated PNG: no IEND chunk',
      'image of 40x6 px (width x height) is under data.min_image_size = 8 px',
      'image of 7x40 px (width x height) is under data.min_image_size = 8 px',
  ]


def test_a_readers_problem_comes_before_the_header_checks():
  jpeg = encode(rgb(), 'JPEG')
  found = [sources.problem(tf.constant(e), tf.constant(p), 8).numpy().decode()
           for e, p in ((jpeg, ''), (b'', 'no camera image'), (b'GIF', ''))]
  assert found == ['', 'no camera image', 'not a JPEG or PNG file (3 bytes)']


def test_jpeg_frame_size_is_read_from_the_frame_header_of_every_kind_of_jpeg():
  rng = np.random.default_rng()
  exif = Image.Exif()
  exif[0x010F] = 'camera maker ' * 40  # an APP1 segment of ~500 bytes before the frame header
  cases = [({}, 3), ({'progressive': True}, 3), ({'optimize': True}, 3), ({'exif': exif}, 3),
           ({'subsampling': 0, 'quality': 95}, 3), ({}, 1)]
  for kwargs, channels in cases:
    height, width = (int(v) for v in rng.integers(9, 700, 2))
    array = rng.integers(0, 256, (height, width, channels)[:3 if channels == 3 else 2], np.uint8)
    jpeg = encode(array, 'JPEG', **kwargs)
    assert Image.open(io.BytesIO(jpeg)).size == (width, height)  # the reference: PIL's parser
    got = checks._jpeg_frame_size(tf.constant(jpeg))  # pylint: disable=protected-access
    assert [int(v) for v in got] == [height, width, True], kwargs


def test_a_jpeg_without_a_frame_header_is_a_problem_not_a_crash():
  jpeg = encode(rgb(), 'JPEG')
  frame = jpeg.index(b'\xff\xc0')
  assert problems([
      b'\xff\xd8\xff\xe0' + bytes(200) + b'\xff\xd9',  # markers only: extract_jpeg_shape raises
      jpeg[:frame] + b'\xff\xd9',  # the tables, then the end
  ]) == ['JPEG without a frame header (SOF marker) before its image data'] * 2


def test_a_jpeg_without_a_scan_is_a_problem_and_stray_bytes_before_it_are_not():
  jpeg = encode(rgb(), 'JPEG')
  scan, frame = jpeg.index(b'\xff\xda'), jpeg.index(b'\xff\xc0')
  assert problems([
      jpeg[:scan] + b'\xff\xd9',  # the headers, then the end: only a decoder would notice
      jpeg[:frame] + b'\0\0\0' + jpeg[frame:],  # stray bytes libjpeg skips with a warning
  ]) == ['JPEG without image data: no scan (SOS marker) after its frame header', '']
  assert tf.io.decode_jpeg(jpeg[:frame] + b'\0\0\0' + jpeg[frame:]).shape == (24, 32, 3)
