"""scripts/export.py on a training workdir, scripts/extract_features.py on a folder of images."""

import importlib.util
import io
import os
import pickle
import shutil

import keras
import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.models import multisiam
from multisiam_tf.train import checkpoints


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script(name):
  """A script as a module, so that its main runs in this process (no second TF start-up)."""
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'scripts', name + '.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A run folder as training leaves it: config.json and checkpoints/ckpt-7 of a tiny model."""
  config = config_lib.load(os.path.join(ROOT, 'configs', 'demo.py')).get_config()
  config.data.image_size = 32
  config.model.backbone.width = 0.25
  config.model.backbone.output_stride = 32
  config.model.head.hidden_dim = 16
  config.model.head.output_dim = 8
  folder = str(tmp_path_factory.mktemp('runs') / 'w1')
  checkpoints.write_config(config, folder)
  model = multisiam.build(config)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                             os.path.join(folder, checkpoints.CHECKPOINTS), 2).save(7)
  return folder, model.online_backbone


def test_export_defaults(workdir):
  folder, backbone = workdir
  export = _script('export')
  assert export.default_out(folder, 'saved_model', 7) == os.path.join('saved_models', 'w1')
  export.main(export.parse(['export.py', '--workdir', folder, '--format', 'detectron2']))
  with open(os.path.join(folder, 'exports', 'w1-7.pkl'), 'rb') as f:
    state = pickle.load(f)['model']
  # The restored online backbone's values, not a fresh initialisation.
  np.testing.assert_array_equal(state['stem.conv1.weight'],
                                backbone.get_layer('conv1').kernel.numpy().transpose(3, 2, 0, 1))


def test_export_keras_step_and_out(workdir, tmp_path):
  folder, backbone = workdir
  export = _script('export')
  export.main(export.parse(['export.py', '--workdir', folder, '--step', '7', '--format', 'keras',
                            '--out', str(tmp_path / 'keras')]))
  reloaded = keras.saving.load_model(str(tmp_path / 'keras' / 'backbone.keras'))
  images = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32)
  np.testing.assert_allclose(reloaded(images, training=False)['c5'],
                             backbone(images, training=False)['c5'], atol=1e-5)


@pytest.mark.parametrize('fmt, out', [('detectron2', 'w1.pkl'), ('keras', 'keras'),
                                      ('saved_model', 'served')])
def test_export_refuses_an_existing_export_unless_overwrite(workdir, tmp_path, fmt, out):
  folder, _ = workdir
  export = _script('export')
  argv = ['export.py', '--workdir', folder, '--format', fmt, '--out', str(tmp_path / out)]
  export.main(export.parse(argv))
  if fmt == 'saved_model':  # --out is the model's base path: the version folder inside
    assert os.path.exists(tmp_path / out / '7' / 'saved_model.pb')
  with pytest.raises(FileExistsError, match='already holds an export.*--overwrite'):
    export.main(export.parse(argv))
  export.main(export.parse(argv + ['--overwrite']))


def test_export_of_a_missing_step_lists_the_steps(workdir):
  export = _script('export')
  with pytest.raises(FileNotFoundError, match=r'no checkpoint of step 5 .*: \[7\]'):
    export.main(export.parse(['export.py', '--workdir', workdir[0], '--format', 'keras',
                              '--step', '5']))


def test_model_garden_without_the_extra_says_how_to_install_it(workdir, tmp_path):
  try:
    import tf_keras  # pylint: disable=g-import-not-at-top,unused-import
    pytest.skip('the model-garden extra is installed')
  except ModuleNotFoundError:
    pass
  export = _script('export')
  with pytest.raises(ModuleNotFoundError, match='make model-garden'):
    export.main(export.parse(['export.py', '--workdir', workdir[0], '--format', 'model_garden',
                              '--out', str(tmp_path / 'mg')]))


def _encode(pixels, fmt):
  buffer = io.BytesIO()
  PIL.Image.fromarray(pixels).save(buffer, format=fmt)
  return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path):
  """Three PNGs (one in a subfolder, sizes differ) and a .jpg that is no image."""
  rng = np.random.default_rng(1)
  folder = tmp_path / 'images'
  (folder / 'sub').mkdir(parents=True)
  pixels = {}
  for name, size in (('a.png', (20, 30)), ('b.png', (33, 33)), ('sub/c.png', (40, 24))):
    pixels[name] = rng.integers(0, 256, size + (3,)).astype(np.uint8)
    (folder / name).write_bytes(_encode(pixels[name], 'PNG'))
  (folder / 'broken.jpg').write_bytes(b'\xff\xd8 truncated')
  return str(folder), pixels


@pytest.mark.parametrize('suffix', ['npz', 'tfrecord'])
def test_extract_features(saved_model_dir, loaded, image_folder, tmp_path, suffix):
  folder, pixels = image_folder
  out = str(tmp_path / f'features.{suffix}')
  extract = _script('extract_features')
  extract.main(extract.parse(['extract_features.py', '--saved_model', saved_model_dir,
                              '--images', folder, '--out', out, '--outputs', 'pooled,c5',
                              '--batch_size', '2']))
  if suffix == 'npz':
    features = np.load(out)
    names = list(features['names'])
    pooled, c5 = features['pooled'], features['c5']
  else:
    records = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(out)]
    names = [r.features.feature['name'].bytes_list.value[0].decode() for r in records]
    pooled, c5 = ([np.reshape(r.features.feature[o].float_list.value,
                              r.features.feature[o + '_shape'].int64_list.value) for r in records]
                  for o in ('pooled', 'c5'))
  assert names == ['a.png', 'b.png', 'sub/c.png']  # sorted; the broken file skipped
  channels = loaded.signatures['serving_default'].structured_outputs['c5'].shape[-1]
  # c5 is 2x2: every image is resized to the SavedModel's 33 px, stride 32 with padding.
  assert np.shape(pooled) == (3, channels) and np.shape(c5) == (3, 2, 2, channels)
  direct = loaded.signatures['serving_default'](
      image_bytes=tf.constant([_encode(pixels[n], 'PNG') for n in names]))
  np.testing.assert_allclose(pooled, direct['pooled'], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(c5, direct['c5'], atol=1e-4, rtol=1e-4)


def test_extract_features_of_no_decodable_image_is_an_error_leaving_no_file(
    saved_model_dir, tmp_path):
  folder = tmp_path / 'broken'
  folder.mkdir()
  (folder / 'x.jpg').write_bytes(b'\xff\xd8 truncated')
  (folder / '.hidden.png').write_bytes(b'not listed: hidden')
  out = tmp_path / 'features.tfrecord'
  extract = _script('extract_features')
  with pytest.raises(RuntimeError, match=f'none of the 1 images under {folder} decoded'):
    extract.main(extract.parse(['extract_features.py', '--saved_model', saved_model_dir,
                                '--images', str(folder), '--out', str(out)]))
  assert not out.exists()


def test_export_passes_a_damaged_newest_checkpoint_and_names_the_step_it_read(workdir, tmp_path):
  folder = str(tmp_path / 'w1')
  shutil.copytree(workdir[0], folder)
  directory = os.path.join(folder, checkpoints.CHECKPOINTS)
  for suffix in ('index', 'data-00000-of-00001'):  # a step 9 whose data file was cut short
    shutil.copy(os.path.join(directory, f'ckpt-7.{suffix}'),
                os.path.join(directory, f'ckpt-9.{suffix}'))
  with open(os.path.join(directory, 'ckpt-9.data-00000-of-00001'), 'r+b') as f:
    f.truncate(100)
  export = _script('export')
  export.main(export.parse(['export.py', '--workdir', folder, '--format', 'keras']))
  written = os.path.join(folder, 'exports', 'keras', '7')
  assert os.listdir(written)
  assert not os.path.exists(os.path.join(folder, 'exports', 'keras', '9'))
