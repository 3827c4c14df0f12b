"""make_demo_data, inspect_views, check_data and benchmark --what input, run as a user runs
them."""

import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from multisiam_tf.data import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(script, *args):
  result = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', script), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('demo'))
  _run('make_demo_data.py', '--out', out, '--num', '3', '--size', '64', '96', '--seed', '5')
  return out


def test_make_demo_data_writes_images_masks_and_class_names(demo_data):
  names = [f'{i:05d}.png' for i in range(3)]
  for sub in ('images', 'labels', 'instances'):
    assert sorted(os.listdir(os.path.join(demo_data, sub))) == names
  with open(os.path.join(demo_data, 'classes.txt')) as f:
    assert f.read().split('\n')[:-1] == list(synthetic.CLASSES)
  for i, name in enumerate(names):
    scene = synthetic.make_scene((5, i), 64, 96)
    for sub, expected in (('images', scene.image), ('labels', scene.labels),
                          ('instances', scene.instances)):
      np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(demo_data, sub, name))),
                                    expected)


def test_inspect_views_draws_one_row_per_image(demo_data, tmp_path):
  out = str(tmp_path / 'sheet' / 'views.png')
  _run('inspect_views.py', '--config', os.path.join(ROOT, 'configs', 'demo.py'),
       f'--config.data.path={demo_data}/images', '--config.data.image_size=32',
       '--out', out, '--num', '2')
  sheet = np.asarray(Image.open(out))
  assert sheet.shape[0] == 2 * (224 + 16) and sheet.shape[2] == 3
  orange, cyan = (sheet == [255, 140, 0]).all(-1), (sheet == [0, 220, 255]).all(-1)
  assert orange.sum() > 100 and cyan.sum() > 100  # both boxes drawn


def test_check_data_names_every_input_training_would_stop_at(demo_data, tmp_path):
  folder = tmp_path / 'images'
  folder.mkdir()
  good = sorted(os.listdir(os.path.join(demo_data, 'images')))
  for name in good:
    (folder / name).write_bytes(open(os.path.join(demo_data, 'images', name), 'rb').read())
  png = (folder / good[0]).read_bytes()
  flipped = png.index(b'IDAT') + 20
  (folder / 'damaged.png').write_bytes(png[:flipped] + bytes([png[flipped] ^ 0xFF])
                                       + png[flipped + 1:])  # only a decoder notices
  jpeg = io.BytesIO()
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(jpeg, 'JPEG')
  (folder / 'hollow.jpg').write_bytes(jpeg.getvalue()[:jpeg.getvalue().index(b'\xff\xda')]
                                      + b'\xff\xd9')
  (folder / 'notes.jpg').write_bytes(b'not an image' * 10)
  command = [sys.executable, os.path.join(ROOT, 'scripts', 'check_data.py'),
             f'--config={os.path.join(ROOT, "configs", "demo.py")}', f'--config.data.path={folder}']
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1, result.stderr[-3000:]
  assert result.stdout.splitlines() == [
      f'{folder}/damaged.png: the decoder rejects it: Invalid PNG data, size {len(png)}',
      f'{folder}/hollow.jpg: JPEG without image data: no scan (SOS marker) after its frame header',
      f'{folder}/notes.jpg: not a JPEG or PNG file (120 bytes)',
      f'6 inputs read from data.path={folder}: 3 bad']


def test_input_benchmark_reports_every_loader(tmp_path):
  out = str(tmp_path / 'input.json')
  result = _run('benchmark.py', '--what', 'input', '--images', '2', '--height', '96',
                '--width', '128', '--pairs', '4', '--batch', '2', '--rounds', '2',
                '--warmup_rounds', '1', '--out', out)
  with open(out) as f:
    report = json.load(f)
  loaders = {'tf_data', 'tf_data_full', 'pil_loader', 'pil_loader_lean'}
  assert set(report['input']) == loaders and report['train_step'] == {}
  for name, figures in report['input'].items():
    assert figures['pairs'] == 4 and figures['pairs_per_s_per_core'] > 0
    assert len(figures['per_core_vs_pil_by_round']) == 2  # the warm-up round is not reported
    assert name in result.stdout
  assert report['input']['pil_loader']['per_core_vs_pil'] == 1.0
  assert report['ratios']['input_vs_pil'] == report['input']['tf_data']['per_core_vs_pil']
  assert report['ratios']['bare_vs_torch'] is None and report['ratios']['bare_vs_torch_reason']


def test_input_benchmark_on_given_jpegs_and_a_glob_matching_nothing(tmp_path):
  for i in range(2):
    Image.fromarray(synthetic.make_scene(i, 80, 112).image).save(tmp_path / f'{i}.jpg')
  out = str(tmp_path / 'input.json')
  _run('benchmark.py', '--what', 'input', '--jpegs', str(tmp_path / '*.jpg'), '--pairs', '2',
       '--batch', '2', '--rounds', '1', '--warmup_rounds', '0', '--out', out)
  with open(out) as f:
    assert json.load(f)['input']['tf_data']['images'] == f'2 JPEGs matching {tmp_path}/*.jpg'
  result = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'benchmark.py'),
                           '--what', 'input', '--jpegs', str(tmp_path / '*.png')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0 and f"'{tmp_path}/*.png' matches no file" in result.stderr


def test_input_benchmark_times_a_waymo_segment_beside_its_jpegs(tmp_path):
  from multisiam_tf.data.sources import waymo_v1  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  frame = waymo_v1.message_class('Frame')()
  for camera in (1, 2):
    path = tmp_path / f'{camera}.jpg'
    Image.fromarray(synthetic.make_scene(camera, 80, 112).image).save(path)
    frame.images.add(name=camera, image=path.read_bytes())
  segment = str(tmp_path / 'segment.tfrecord')
  with tf.io.TFRecordWriter(segment) as writer:
    writer.write(frame.SerializeToString())
  out = str(tmp_path / 'input.json')
  result = _run('benchmark.py', '--what', 'input', '--jpegs', str(tmp_path / '*.jpg'),
                '--format', 'waymo_v1', '--path', segment, '--pairs', '2', '--batch', '2',
                '--rounds', '1', '--warmup_rounds', '0', '--out', out)
  with open(out) as f:
    figures = json.load(f)['input']['tf_data_waymo_v1']
  assert figures['pairs'] == 2 and figures['per_core_vs_tf_data'] > 0
  assert 'tf_data_waymo_v1 vs tf_data per core' in result.stdout
