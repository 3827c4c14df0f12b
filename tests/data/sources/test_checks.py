"""The header checks, on encoded images made here."""

import tensorflow as tf

from multisiam_tf.data import sources
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
