"""Input listing, format detection and reading, on real files written to a temp folder."""

import numpy as np
import pytest

from multisiam_tf.data import sources
from multisiam_tf.data import views
from sources_testlib import encode, example, frame, problems, read_all, rgb, write, write_records


def test_folder_is_searched_recursively_for_images_only(tmp_path):
  expected = {
      write(tmp_path / 'a.jpg', encode(rgb(), 'JPEG')),
      write(tmp_path / 'sub' / 'b.png', encode(rgb(seed=1), 'PNG')),
      write(tmp_path / 'sub' / 'deeper' / 'c.JPEG', encode(rgb(seed=2), 'JPEG')),
  }
  write(tmp_path / 'sub' / 'notes.txt', b'not an image')
  write(tmp_path / 'sub' / '.hidden.jpg', b'editor swap file')

  inputs = sources.list_inputs(str(tmp_path))

  assert inputs.format == 'folder'
  assert set(inputs.files) == expected and list(inputs.files) == sorted(expected)
  for key, encoded, problem in read_all(inputs):
    with open(key, 'rb') as f:
      assert encoded == f.read() and problem == ''


def test_every_pixel_format_reads_and_decodes_to_rgb_uint8(tmp_path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  image = rgb()
  gray = image[..., 0]
  rgba = np.dstack([image, np.full(gray.shape, 128, np.uint8)])
  deep = (image.astype(np.uint16) * 257)  # 16-bit: v * 257 converts back to exactly v
  files = {
      'gray.png': (encode(gray, 'PNG'), np.dstack([gray] * 3)),
      'rgba.png': (encode(rgba, 'PNG'), image),
      'deep.png': (tf.io.encode_png(deep).numpy(), image),
      'gray.jpg': (encode(gray, 'JPEG', quality=100), None),
      'rgb.jpg': (encode(image, 'JPEG', quality=100), None),
  }
  for name, (data, _) in files.items():
    write(tmp_path / name, data)

  read = {key: encoded for key, encoded, _ in read_all(sources.list_inputs(str(tmp_path)))}

  assert problems(list(read.values())) == [''] * len(files)
  for name, (_, expected) in files.items():
    pixels = views.decode_rgb(read[str(tmp_path / name)]).numpy()
    assert pixels.dtype == np.uint8 and pixels.shape == image.shape, name
    if expected is not None:
      np.testing.assert_array_equal(pixels, expected, err_msg=name)


def test_tfrecords_yield_image_encoded_keyed_by_file_and_record(tmp_path):
  images = [encode(rgb(seed=i), 'PNG') for i in range(3)]
  paths = [write_records(tmp_path / 'train.tfrecord-00000-of-00002', [
               example(**{'image/encoded': images[0], 'image/format': b'png'}),
               example(**{'image/encoded': images[1]})]),
           write_records(tmp_path / 'train.tfrecord-00001-of-00002', [
               example(**{'image/encoded': images[2]}),
               example(**{'image/other': b'no image here'})])]

  for path in (str(tmp_path), str(tmp_path / '*.tfrecord-*')):
    inputs = sources.list_inputs(path)
    assert inputs == sources.Inputs(tuple(paths), 'tfrecord'), path

  missing = "the record has no image bytes under 'image/encoded' (missing or empty feature)"
  assert read_all(inputs) == [(f'{paths[0]}:0', images[0], ''), (f'{paths[0]}:1', images[1], ''),
                              (f'{paths[1]}:0', images[2], ''), (f'{paths[1]}:1', b'', missing)]


def test_comma_separated_globs_are_merged_without_duplicates(tmp_path):
  a = write(tmp_path / 'x' / 'a.jpg', encode(rgb(), 'JPEG'))
  b = write(tmp_path / 'y' / 'b.png', encode(rgb(), 'PNG'))
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
  write(tmp_path / 'docs' / 'readme.txt', b'text')
  if 'both' in message:
    write(tmp_path / 'docs' / 'photo.jpg', encode(rgb(), 'JPEG'))
  with pytest.raises(ValueError) as error:
    sources.list_inputs(path.format(tmp=tmp_path))
  assert message.format(tmp=tmp_path) in str(error.value)


def test_forced_format_reads_what_auto_would_not(tmp_path):
  record = write(tmp_path / 'shard-0', b'')  # a TFRecord shard without the usual name
  with pytest.raises(ValueError, match='holds no images'):
    sources.list_inputs(str(tmp_path), 'folder')
  assert sources.list_inputs(str(tmp_path / 'shard-*'), 'tfrecord').files == (record,)


def test_auto_tells_waymo_frames_from_examples_by_the_first_record(tmp_path):
  jpeg = encode(rgb(), 'JPEG')
  segment = write_records(tmp_path / 'waymo' / 'segment-1.tfrecord', [frame({1: jpeg})])
  examples = write_records(tmp_path / 'ex' / 'a.tfrecord', [example(**{'image/encoded': jpeg})])
  assert sources.list_inputs(str(tmp_path / 'waymo')).format == 'waymo_v1'
  assert sources.list_inputs(str(tmp_path / 'waymo' / '*')).format == 'waymo_v1'
  assert sources.list_inputs(examples).format == 'tfrecord'
  with pytest.raises(ValueError, match='mixes formats'):
    sources.list_inputs(f'{segment},{examples}')


@pytest.mark.parametrize('data_format, records, message', [
    ('folder', 'frame', "holds no images .*; its '{file}' is read by data.format=waymo_v1"),
    ('folder', 'example', "holds no images .*; its '{file}' is read by data.format=tfrecord"),
    ('tfrecord', 'frame', "'{file}' holds Waymo v1 Frames, not what data.format=tfrecord reads; "
                          'set data.format=waymo_v1'),
    ('waymo_v1', 'example', "'{file}' holds tf.train.Example records, not what "
                            'data.format=waymo_v1 reads; set data.format=tfrecord'),
    ('waymo_v1', 'garbage', "record 0 of '{file}' is neither a tf.train.Example nor a Waymo"),
])
def test_a_path_in_another_format_names_the_format_that_reads_it(tmp_path, data_format, records,
                                                                 message):
  jpeg = encode(rgb(), 'JPEG')
  record = {'frame': frame({1: jpeg}), 'example': example(**{'image/encoded': jpeg}),
            'garbage': b'\xff\xd8 no protobuf'}[records]
  path = write_records(tmp_path / 'part.tfrecord', [record])
  with pytest.raises(ValueError, match=message.format(file=path)):
    sources.list_inputs(str(tmp_path), data_format)


def test_a_tfrecord_globbed_as_folder_names_the_format_that_reads_it(tmp_path):
  path = write_records(tmp_path / 'segment.tfrecord', [frame({1: encode(rgb())})])
  write(tmp_path / 'a.jpg', encode(rgb()))
  with pytest.raises(ValueError, match=f"'{path}' is no image; data.format=waymo_v1 reads it"):
    sources.list_inputs(f'{tmp_path}/*', 'folder')


def test_unknown_format_is_refused():
  with pytest.raises(ValueError, match="data.format is 'kitti'; it must be auto or one of"):
    sources.list_inputs('/data', 'kitti')
