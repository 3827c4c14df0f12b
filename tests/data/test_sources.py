"""Input listing, reading and the header checks, on real files written to a temp folder."""

import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from multisiam_tf.data import sources
from multisiam_tf.data import views


def _encode(array, fmt, **kwargs):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def _write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _rgb(height=24, width=32, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def _example(**features):
  feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
             for k, v in features.items()}
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _read_all(inputs):
  ds = sources.read(tf.data.Dataset.from_tensor_slices(list(inputs.files)), inputs.format)
  return [(k.decode(), v) for k, v in ds.as_numpy_iterator()]


def _problems(encoded_list, min_image_size=8):
  ds = tf.data.Dataset.from_tensor_slices(encoded_list)
  ds = ds.map(lambda e: sources.image_problem(e, min_image_size))
  return [p.decode() for p in ds.as_numpy_iterator()]


def test_folder_is_searched_recursively_for_images_only(tmp_path):
  expected = {
      _write(str(tmp_path / 'a.jpg'), _encode(_rgb(), 'JPEG')),
      _write(str(tmp_path / 'sub' / 'b.png'), _encode(_rgb(seed=1), 'PNG')),
      _write(str(tmp_path / 'sub' / 'deeper' / 'c.JPEG'), _encode(_rgb(seed=2), 'JPEG')),
  }
  _write(str(tmp_path / 'sub' / 'notes.txt'), b'not an image')
  _write(str(tmp_path / 'sub' / '.hidden.jpg'), b'editor swap file')

  inputs = sources.list_inputs(str(tmp_path))

  assert inputs.format == 'folder'
  assert set(inputs.files) == expected and list(inputs.files) == sorted(expected)
  for key, encoded in _read_all(inputs):
    with open(key, 'rb') as f:
      assert encoded == f.read()


def test_every_pixel_format_reads_and_decodes_to_rgb_uint8(tmp_path):
  rgb = _rgb()
  gray = rgb[..., 0]
  rgba = np.dstack([rgb, np.full(gray.shape, 128, np.uint8)])
  deep = (rgb.astype(np.uint16) * 257)  # 16-bit: v * 257 converts back to exactly v
  files = {
      'gray.png': (_encode(gray, 'PNG'), np.dstack([gray] * 3)),
      'rgba.png': (_encode(rgba, 'PNG'), rgb),
      'deep.png': (tf.io.encode_png(deep).numpy(), rgb),
      'gray.jpg': (_encode(gray, 'JPEG', quality=100), None),
      'rgb.jpg': (_encode(rgb, 'JPEG', quality=100), None),
  }
  for name, (data, _) in files.items():
    _write(str(tmp_path / name), data)

  read = dict(_read_all(sources.list_inputs(str(tmp_path))))

  assert _problems(list(read.values())) == [''] * len(files)
  for name, (_, expected) in files.items():
    pixels = views.decode_rgb(read[str(tmp_path / name)]).numpy()
    assert pixels.dtype == np.uint8 and pixels.shape == rgb.shape, name
    if expected is not None:
      np.testing.assert_array_equal(pixels, expected, err_msg=name)


def test_tfrecords_yield_image_encoded_keyed_by_file_and_record(tmp_path):
  images = [_encode(_rgb(seed=i), 'PNG') for i in range(3)]
  paths = [str(tmp_path / f'train.tfrecord-{i:05d}-of-00002') for i in range(2)]
  with tf.io.TFRecordWriter(paths[0]) as writer:
    writer.write(_example(**{'image/encoded': images[0], 'image/format': b'png'}))
    writer.write(_example(**{'image/encoded': images[1]}))
  with tf.io.TFRecordWriter(paths[1]) as writer:
    writer.write(_example(**{'image/encoded': images[2]}))
    writer.write(_example(**{'image/other': b'no image here'}))

  for path in (str(tmp_path), str(tmp_path / '*.tfrecord-*')):
    inputs = sources.list_inputs(path)
    assert inputs == sources.Inputs(tuple(paths), 'tfrecord'), path

  read = dict(_read_all(inputs))
  assert read == {f'{paths[0]}:0': images[0], f'{paths[0]}:1': images[1],
                  f'{paths[1]}:0': images[2], f'{paths[1]}:1': b''}
  assert _problems([read[f'{paths[1]}:1']]) == ['not a JPEG or PNG file (0 bytes)']


def test_comma_separated_globs_are_merged_without_duplicates(tmp_path):
  a = _write(str(tmp_path / 'x' / 'a.jpg'), _encode(_rgb(), 'JPEG'))
  b = _write(str(tmp_path / 'y' / 'b.png'), _encode(_rgb(), 'PNG'))
  path = f'{tmp_path}/x/*.jpg, {tmp_path}/y/*.png,{tmp_path}/x/a.jpg'
  assert sources.list_inputs(path) == sources.Inputs((a, b), 'folder')


@pytest.mark.parametrize('path, message', [
    ('', 'data.path is empty'),
    (' , ', 'data.path is empty'),
    ('{tmp}/missing', "'{tmp}/missing' does not exist"),
    ('{tmp}/*.jpeg', "glob '{tmp}/*.jpeg' matches no files"),
    ('{tmp}/docs', "folder '{tmp}/docs' holds no images (.jpg, .jpeg, .png) and no TFRecord"),
    ('{tmp}/docs/*', "glob '{tmp}/docs/*' matches both images"),
])
def test_bad_paths_fail_naming_the_path(tmp_path, path, message):
  _write(str(tmp_path / 'docs' / 'readme.txt'), b'text')
  if 'both' in message:
    _write(str(tmp_path / 'docs' / 'photo.jpg'), _encode(_rgb(), 'JPEG'))
  with pytest.raises(ValueError) as error:
    sources.list_inputs(path.format(tmp=tmp_path))
  assert message.format(tmp=tmp_path) in str(error.value)


def test_forced_format_reads_what_auto_would_not(tmp_path):
  record = _write(str(tmp_path / 'shard-0'), b'')  # a TFRecord shard without the usual name
  with pytest.raises(ValueError, match='holds no images'):
    sources.list_inputs(str(tmp_path), 'folder')
  assert sources.list_inputs(str(tmp_path / 'shard-*'), 'tfrecord').files == (record,)


def test_image_problem_names_what_is_wrong():
  jpeg, png = _encode(_rgb(), 'JPEG'), _encode(_rgb(), 'PNG')
  problems = _problems([
      jpeg, png,
      jpeg + b'\0' * 40,  # padding after the end-of-image marker is allowed
      b'GIF89a' + b'\0' * 100,
      b'',
      jpeg[:len(jpeg) // 2],
      png[:len(png) // 2],
      _encode(_rgb(6, 40), 'JPEG'),
      _encode(_rgb(40, 7), 'PNG'),
  ])
  assert problems == [
      '', '', '',
      'not a JPEG or PNG file (106 bytes)',
      'not a JPEG or PNG file (0 bytes)',
      'truncated JPEG: no end-of-image marker',
      'truncated PNG: no IEND chunk',
      'image of 40x6 px (width x height) is under data.min_image_size = 8 px',
      'image of 7x40 px (width x height) is under data.min_image_size = 8 px',
  ]
