"""The tf.data pipeline end to end on real files: contract, determinism, sharding, bad inputs."""

import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.data import augment
from multisiam_tf.data import pipeline
from multisiam_tf.data import sources
from multisiam_tf.data import synthetic
from multisiam_tf.data import views

SIZE = 32
KEYS = {'view1', 'view2', 'box1', 'box2', 'flip1', 'flip2', 'fallback'}


def _encode(array, fmt):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, fmt)
  return buffer.getvalue()


def _scene(seed):
  return synthetic.make_scene(seed, 48, 64).image


def _write(folder, name, data):
  path = os.path.join(folder, name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _bad_files(folder):
  jpeg = _encode(_scene(9), 'JPEG')
  return {
      'non-image': _write(folder, 'notes.jpg', b'a text file named like an image\n' * 4),
      'truncated': _write(folder, 'cut.jpg', jpeg[:len(jpeg) // 2]),
      'tiny': _write(folder, 'tiny.png', _encode(_scene(9)[:5, :5], 'PNG')),
      'no frame': _write(folder, 'hollow.jpg', b'\xff\xd8\xff\xe0' + bytes(200) + b'\xff\xd9'),
      'no scan': _write(folder, 'no_scan.jpg', jpeg[:jpeg.index(b'\xff\xda')] + b'\xff\xd9'),
  }


def _config(path, **data):
  c = config_lib.defaults()
  c.data.path = path
  c.data.image_size = SIZE
  c.data.shuffle_buffer = 16
  c.data.update(data)
  c.train.batch_size = 4
  return c


def _batches(config, n=2, seed=0, **kwargs):
  iterator = iter(pipeline.make_dataset(config, seed=seed, **kwargs))
  return [{k: v.numpy() for k, v in next(iterator).items()} for _ in range(n)]


@pytest.fixture(scope='module')
def tfrecords(tmp_path_factory):
  folder = tmp_path_factory.mktemp('records')
  for f in range(2):
    with tf.io.TFRecordWriter(str(folder / f'part-{f}.tfrecord')) as writer:
      for r in range(4):
        image = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[_encode(_scene(4 * f + r), 'JPEG')]))
        writer.write(tf.train.Example(features=tf.train.Features(
            feature={'image/encoded': image})).SerializeToString())
  return str(folder)


def test_batch_contract_for_every_pixel_format(tmp_path):
  rgb = _scene(0)
  _write(str(tmp_path), 'rgb.jpg', _encode(rgb, 'JPEG'))
  _write(str(tmp_path), 'a/gray.jpg', _encode(rgb[..., 1], 'JPEG'))
  _write(str(tmp_path), 'a/rgba.png', _encode(np.dstack([rgb, rgb[..., :1]]), 'PNG'))
  _write(str(tmp_path), 'a/b/deep.png', tf.io.encode_png(rgb.astype(np.uint16) * 257).numpy())
  context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                       num_replicas_in_sync=2)

  batches = _batches(_config(str(tmp_path)), n=3, input_context=context, batch_size=4)

  for batch in batches:
    assert set(batch) == KEYS
    for name in ('view1', 'view2'):
      assert batch[name].shape == (2, SIZE, SIZE, 3) and batch[name].dtype == np.float32
      assert np.isfinite(batch[name]).all()
      assert -2.2 < batch[name].min() < 0 < batch[name].max() < 2.7  # ImageNet-normalised
    for name in ('box1', 'box2'):
      box = batch[name]
      assert box.shape == (2, 4) and box.dtype == np.float32
      assert (box >= 0).all() and (box <= 1).all()
      assert (box[:, 2] > box[:, 0]).all() and (box[:, 3] > box[:, 1]).all()
    for name in ('flip1', 'flip2', 'fallback'):
      assert batch[name].shape == (2,) and batch[name].dtype == bool


def test_same_seed_same_batches_and_another_seed_other_batches(tfrecords):
  config = _config(tfrecords)
  first, again, other = (_batches(config, seed=s) for s in (3, 3, 4))
  for a, b in zip(first, again):
    for key in KEYS:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  assert not np.array_equal(first[0]['box1'], other[0]['box1'])
  assert not np.array_equal(first[1]['view2'], other[1]['view2'])
  assert not np.array_equal(first[0]['view1'], first[1]['view1'])


@pytest.mark.parametrize('pipelines', [2, 3])
def test_each_input_pipeline_gets_disjoint_files_covering_all(pipelines):
  files = tuple(f'/data/{i:03d}.jpg' for i in range(10))
  shards = [pipeline.shard_files(files, tf.distribute.InputContext(pipelines, i, pipelines))
            for i in range(pipelines)]
  assert sorted(sum(shards, ())) == list(files)
  assert all(shards) and len(set(sum(shards, ()))) == len(files)


def test_fewer_files_than_input_pipelines_fails():
  with pytest.raises(ValueError, match='2 input files for 3 input pipelines'):
    pipeline.shard_files(('a.jpg', 'b.jpg'), tf.distribute.InputContext(3, 0, 3))


BAD_KINDS = [
    ('non-image', 'not a JPEG or PNG file'),
    ('truncated', 'truncated JPEG'),
    ('tiny', 'under data.min_image_size = 8 px'),
    ('no frame', 'JPEG without a frame header'),
    ('no scan', 'JPEG without image data: no scan'),
]


@pytest.mark.parametrize('kind, reason', BAD_KINDS)
def test_training_batches_stop_at_a_bad_input_naming_it(tmp_path, kind, reason):
  # without skip_corrupt, training checks each input in the map that decodes it
  _write(str(tmp_path), 'good.jpg', _encode(_scene(0), 'JPEG'))
  bad = _bad_files(str(tmp_path / 'bad'))[kind]
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _batches(_config(f'{tmp_path}/good.jpg,{bad}'))
  assert f'[data: cannot use] [{bad}] [' in str(error.value) and reason in str(error.value)


def test_skip_corrupt_logs_each_bad_file_and_batches_stay_finite(tmp_path, capfd):
  for i in range(2):
    _write(str(tmp_path), f'good{i}.png', _encode(_scene(i), 'PNG'))
  bad = _bad_files(str(tmp_path))

  batches = _batches(_config(str(tmp_path), skip_corrupt=True), n=3)

  for batch in batches:
    assert all(np.isfinite(batch[k]).all() for k in ('view1', 'view2', 'box1', 'box2'))
  log = capfd.readouterr().err
  for path in bad.values():
    assert f'data: skipping {path}: ' in log
  assert f'({len(bad)} skipped so far in this pass)' in log


def test_all_inputs_corrupt_fails_instead_of_hanging(tmp_path):
  _bad_files(str(tmp_path))
  with pytest.raises(tf.errors.InvalidArgumentError, match='gave no usable image'):
    _batches(_config(str(tmp_path), skip_corrupt=True), n=1)


def test_tf_data_service_delivers_batches(tfrecords):
  dispatcher = tf.data.experimental.service.DispatchServer()
  worker = tf.data.experimental.service.WorkerServer(tf.data.experimental.service.WorkerConfig(
      dispatcher_address=dispatcher.target.split('://')[1]))
  batches = _batches(_config(tfrecords, service_address=dispatcher.target), n=2)
  assert all(set(b) == KEYS and b['view1'].shape == (4, SIZE, SIZE, 3) for b in batches)
  worker.stop()
  dispatcher.stop()


@pytest.mark.parametrize('max_decode_ratio', [1, 8])
def test_make_pair_flips_while_resizing_and_draws_as_byol_augment(max_decode_ratio):
  # make_pair mirrors each view as it is resized (free on the DCT-scaled path) and augments
  # without the flip: the example equals resizing unflipped, then byol_augment with the same
  # seeds; the mirrored resize samples the same points right to left (float32 rounding of
  # the sample points: < 1e-4 in normalised units)
  data = _config('').data
  data.max_decode_ratio = max_decode_ratio
  encoded = _encode(synthetic.make_scene(5, 240, 320).image, 'JPEG')
  flips = []
  for s in range(6):
    seed = tf.constant([s, 4], tf.int64)
    got = pipeline.make_pair(encoded, seed, data)
    view_seed, seed1, seed2 = tf.unstack(tf.random.split(seed, 3))
    pair = views.make_views(
        encoded, view_seed, image_size=SIZE, iou_threshold=data.iou_threshold,
        max_pair_tries=data.max_pair_tries, pair_candidates=data.pair_candidates,
        area_range=tuple(data.area_range), aspect_ratio_range=tuple(data.aspect_ratio_range),
        max_decode_ratio=max_decode_ratio)
    for v, view_seed_v in ((1, seed1), (2, seed2)):
      expected, flip = augment.byol_augment(pair[f'view{v}'], view_seed_v, v)
      assert bool(got[f'flip{v}']) == bool(flip)
      np.testing.assert_allclose(got[f'view{v}'].numpy(), expected.numpy(), atol=1e-4)
      np.testing.assert_array_equal(got[f'box{v}'].numpy(), pair[f'box{v}'].numpy())
      flips.append(bool(flip))
  assert any(flips) and not all(flips)


def _truncated_tfrecord(folder):
  """8 records, the file cut inside the sixth (each record: 16 bytes of framing and its data)."""
  path = os.path.join(folder, 'cut.tfrecord')
  records = [tf.train.Example(features=tf.train.Features(feature={
      sources.TFRECORD_IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[_encode(_scene(i), 'JPEG')]))})).SerializeToString() for i in range(8)]
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)
  with open(path, 'r+b') as f:
    f.truncate(sum(16 + len(r) for r in records[:5]) + len(records[5]) // 2)
  return path


@pytest.mark.parametrize('skip_corrupt', [False, True])
def test_truncated_tfrecord_is_an_error_naming_it_or_skipped(tmp_path, capfd, skip_corrupt):
  path = _truncated_tfrecord(str(tmp_path))
  inputs = sources.list_inputs(path, 'tfrecord')
  data = _config(path, skip_corrupt=skip_corrupt, format='tfrecord').data
  if not skip_corrupt:
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf'{path}:truncated\] '
                                                             r'\[truncated TFRecord'):
      _batches(_config(path, format='tfrecord'))
    return
  keys = [key.decode() for key, _ in
          pipeline.skipping_pass(inputs, data, seed=0).as_numpy_iterator()]
  assert sorted(keys) == [f'{path}:{i}' for i in range(5)]
  log = capfd.readouterr().err
  assert f'data: skipping {path}:truncated: truncated TFRecord' in log
  assert '(1 skipped so far in this pass)' in log


def test_a_truncated_tfrecord_is_read_once(tmp_path, monkeypatch):
  # the truncation check sums record bytes in the same pass: the reader yields each record once
  path, real, produced = _truncated_tfrecord(str(tmp_path)), tf.data.TFRecordDataset, []

  def counted(*args, **kwargs):
    def count(record):
      produced.append(1)
      return record
    return real(*args, **kwargs).map(
        lambda r: tf.ensure_shape(tf.py_function(count, [r], tf.string), []))
  inputs = sources.list_inputs(path, 'tfrecord')  # reads a first record to check the format
  monkeypatch.setattr(tf.data, 'TFRecordDataset', counted)
  data = _config(path, skip_corrupt=True, format='tfrecord').data
  images = list(pipeline.skipping_pass(inputs, data, seed=0))
  assert len(images) == 5 and len(produced) == 5


def test_a_tfrecord_given_as_folder_format_names_the_format_that_reads_it(tmp_path):
  path = _truncated_tfrecord(str(tmp_path))
  with pytest.raises(ValueError, match='data.format=tfrecord'):
    sources.list_inputs(path, 'folder')
  with pytest.raises(ValueError, match='data.format=tfrecord'):
    sources.list_inputs(str(tmp_path), 'folder')


def test_skip_corrupt_counts_inputs_only_the_decoder_rejects(tmp_path, capfd):
  """A PNG whose image data is damaged passes the header checks; its decoder's error drops it,
  and the count of skipped inputs includes it."""
  for i in range(2):
    _write(str(tmp_path), f'good{i}.png', _encode(_scene(i), 'PNG'))
  png = _encode(_scene(2), 'PNG')
  flipped = png.index(b'IDAT') + 20
  damaged = png[:flipped] + bytes([png[flipped] ^ 0xFF]) + png[flipped + 1:]
  assert sources.problem(tf.constant(damaged), '', 8).numpy() == b''
  _write(str(tmp_path), 'damaged.png', damaged)
  skipped = tf.Variable(0, dtype=tf.int64)
  batches = _batches(_config(str(tmp_path), skip_corrupt=True), n=3, skipped=skipped)
  assert all(np.isfinite(batch['view1']).all() for batch in batches)
  log = capfd.readouterr().err
  assert 'data: skipping' not in log  # not a header check's
  assert 'data: skipped 1 input(s) that failed to decode' in log
  assert int(skipped.numpy()) >= 1  # one per pass read ahead so far
