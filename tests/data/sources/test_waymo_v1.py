"""Waymo v1 segments: the real frame end to end, Frames built here, bad records, pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.data import pipeline
from multisiam_tf.data import sources
from multisiam_tf.data import views
from multisiam_tf.data.sources import waymo_v1
from sources_testlib import encode, example, frame, read_all, rgb, write_records


def test_the_real_frame_gives_its_five_camera_images(waymo_frame):
  inputs = sources.list_inputs(waymo_frame)
  assert inputs == sources.Inputs((waymo_frame,), 'waymo_v1')

  read = read_all(inputs)

  by_camera = {key.rsplit(':', 1)[1]: encoded for key, encoded, _ in read}
  assert sorted(by_camera) == sorted(sources.CAMERAS)
  assert all(key.startswith(f'{waymo_frame}:0:') and problem == '' for key, _, problem in read)
  sizes = {c: tuple(views.decode_rgb(e).shape.as_list()) for c, e in by_camera.items()}
  assert sizes == {'FRONT': (1280, 1920, 3), 'FRONT_LEFT': (1280, 1920, 3),
                   'FRONT_RIGHT': (1280, 1920, 3), 'SIDE_LEFT': (886, 1920, 3),
                   'SIDE_RIGHT': (886, 1920, 3)}


def test_the_real_frame_trains_a_batch_of_pairs(waymo_frame):
  c = config_lib.defaults()
  c.data.update(path=waymo_frame, format='waymo_v1', image_size=32, cameras=('FRONT', 5))
  c.train.batch_size = 4
  batch = next(iter(pipeline.make_dataset(c, seed=0)))
  assert batch['view1'].shape == (4, 32, 32, 3) and np.isfinite(batch['view1'].numpy()).all()


def test_built_frames_are_read_per_selected_camera_in_record_order(tmp_path):
  jpegs = {(r, c): encode(rgb(16, 24, seed=10 * r + c)) for r in range(3) for c in (1, 2, 5)}
  segment = write_records(tmp_path / 'segment-a_with_camera_labels.tfrecord', [
      frame({c: jpegs[r, c] for c in (5, 1, 2)}, context=f'ctx{r}') for r in range(3)])

  inputs = sources.list_inputs(str(tmp_path), cameras=('side_right', 1))

  assert inputs.cameras == ('FRONT', 'SIDE_RIGHT')
  assert read_all(inputs) == [(f'{segment}:{r}:{name}', jpegs[r, c], '')
                              for r in range(3) for c, name in ((5, 'SIDE_RIGHT'), (1, 'FRONT'))]


def test_bad_records_are_reported_by_file_and_record_index(tmp_path):
  jpeg = encode(rgb())
  segment = write_records(tmp_path / 'segment.tfrecord', [
      frame({1: jpeg}),
      frame({}),  # a Frame without camera images
      example(**{'image/encoded': jpeg}),  # a record of another kind
      b'\x0b\xff no protobuf at all',
      frame({1: b'', 2: jpeg}),
  ])
  read = read_all(sources.Inputs((segment,), 'waymo_v1'))
  # an Example's bytes may or may not parse as a Frame (without images): either says so
  assert read[2][:2] == (f'{segment}:2', b'') and read[2][2] in (waymo_v1.NO_IMAGES,
                                                                   waymo_v1.NOT_A_FRAME)
  assert read[:2] + read[3:] == [
      (f'{segment}:0:FRONT', jpeg, ''),
      (f'{segment}:1', b'', waymo_v1.NO_IMAGES),
      (f'{segment}:3', b'', waymo_v1.NOT_A_FRAME),
      (f'{segment}:4:FRONT', b'', waymo_v1.NO_JPEG),
      (f'{segment}:4:FRONT_LEFT', jpeg, ''),
  ]


def _config(path, **data):
  c = config_lib.defaults()
  c.data.update(path=path, format='waymo_v1', image_size=32, shuffle_buffer=4, **data)
  c.train.batch_size = 2
  return c


def test_training_stops_at_a_record_that_is_not_a_frame_naming_it(tmp_path):
  segment = write_records(tmp_path / 'segment.tfrecord', [frame({1: encode(rgb())}),
                                                          b'\x0b\xff no protobuf'])
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    iterator = iter(pipeline.make_dataset(_config(segment), seed=0))
    for _ in range(2):
      next(iterator)
  assert f'[{segment}:1]' in str(error.value) and waymo_v1.NOT_A_FRAME in str(error.value)


def test_skip_corrupt_counts_and_skips_bad_records(tmp_path, capfd):
  jpeg = encode(rgb(40, 48))
  segment = write_records(tmp_path / 'segment.tfrecord', [
      frame({1: jpeg, 2: b''}), b'\x0b\xff no protobuf', frame({}), frame({3: jpeg})])

  iterator = iter(pipeline.make_dataset(_config(segment, skip_corrupt=True), seed=0))
  batches = [next(iterator) for _ in range(2)]  # the second needs a second pass: the first done

  assert all(np.isfinite(batch['view1'].numpy()).all() for batch in batches)
  log = capfd.readouterr().err
  for key, why in ((':0:FRONT_LEFT', waymo_v1.NO_JPEG), (':1', waymo_v1.NOT_A_FRAME),
                   (':2', waymo_v1.NO_IMAGES)):
    assert f'data: skipping {segment}{key}: {why}' in log
  assert '(3 skipped so far in this pass)' in log


@pytest.mark.parametrize('cameras, message', [
    ((), 'data.cameras is empty'), (('REAR',), "'REAR' is no Waymo camera"),
    ((6,), '6 is no Waymo camera')])
def test_bad_camera_selections_are_refused(cameras, message):
  with pytest.raises(ValueError, match=message):
    waymo_v1.camera_ids(cameras)


def test_built_frames_parse_back_with_the_published_field_numbers():
  # field numbers of waymo_open_dataset/dataset.proto, written out independently of the module
  published = {('Frame', 'context'): 1, ('Frame', 'images'): 4, ('CameraImage', 'name'): 1,
               ('CameraImage', 'image'): 2, ('CameraImage', 'camera_segmentation_label'): 10,
               ('CameraSegmentationLabel', 'panoptic_label_divisor'): 1,
               ('CameraSegmentationLabel', 'panoptic_label'): 2}
  for (message, field), number in published.items():
    assert waymo_v1.message_class(message).DESCRIPTOR.fields_by_name[field].number == number
  # Frame{context: {name: 'c'}, images: [{name: 3, image: 'ab'}]} encoded by hand: tag, length
  wire = bytes([0x0a, 0x03, 0x0a, 0x01]) + b'c' + bytes([0x22, 0x06, 0x08, 0x03, 0x12, 0x02])
  assert frame({3: b'ab'}, context='c') == wire + b'ab'
