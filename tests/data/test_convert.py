"""Conversion to sharded TFRecords: the round trip, bad inputs, and a resume after a real kill."""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from multisiam_tf.data import convert
from multisiam_tf.data import sources
from multisiam_tf.data.sources import waymo_v1

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'convert_to_tfrecord.py')


def _jpeg(path, seed):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = np.random.default_rng(seed).integers(0, 256, (16, 24, 3), np.uint8)
  Image.fromarray(image).save(path, 'JPEG')
  with open(path, 'rb') as f:
    return f.read()


def _converted(out, name='train'):
  """{source_id: [encoded, ...]} of every example in the finished shards."""
  found = {}
  for shard in sorted(glob.glob(os.path.join(out, f'{name}.tfrecord-*'))):
    assert not shard.endswith(convert.PARTIAL), shard
    for record in tf.data.TFRecordDataset(shard).as_numpy_iterator():
      feature = tf.train.Example.FromString(record).features.feature
      key = feature[convert.SOURCE_ID_KEY].bytes_list.value[0].decode()
      found.setdefault(key, []).append(feature['image/encoded'].bytes_list.value[0])
  return found


def test_waymo_frames_round_trip_to_examples_keyed_by_their_source(tmp_path):
  jpegs = {(r, c): _jpeg(str(tmp_path / 'img' / f'{r}{c}.jpg'), 10 * r + c)
           for r in range(2) for c in (1, 4)}
  segments = []
  for s in range(3):
    segments.append(str(tmp_path / 'waymo' / f'segment-{s}.tfrecord'))
    os.makedirs(os.path.dirname(segments[-1]), exist_ok=True)
    with tf.io.TFRecordWriter(segments[-1]) as writer:
      for r in range(2):
        message = waymo_v1.message_class('Frame')()
        for c in (1, 4):
          message.images.add(name=c, image=jpegs[r, c])
        writer.write(message.SerializeToString())
  inputs = sources.list_inputs(str(tmp_path / 'waymo'), cameras=('FRONT', 'SIDE_LEFT'))

  shards = convert.convert(inputs, str(tmp_path / 'out'), files_per_shard=2)

  assert [os.path.basename(s) for s in shards] == ['train.tfrecord-00000-of-00002',
                                                   'train.tfrecord-00001-of-00002']
  expected = {f'{seg}:{r}:{name}': [jpegs[r, c]] for seg in segments for r in range(2)
              for c, name in ((1, 'FRONT'), (4, 'SIDE_LEFT'))}
  assert _converted(str(tmp_path / 'out')) == expected
  read_back = sources.list_inputs(str(tmp_path / 'out'))
  assert read_back.format == 'tfrecord' and sources.count_inputs(read_back) == 12


def test_a_bad_input_stops_the_conversion_naming_it_or_is_skipped(tmp_path):
  good = _jpeg(str(tmp_path / 'in' / 'a.jpg'), 0)
  with open(tmp_path / 'in' / 'b.jpg', 'wb') as f:
    f.write(good[:len(good) // 2])
  inputs = sources.list_inputs(str(tmp_path / 'in'))
  with pytest.raises(ValueError, match=f'cannot convert {tmp_path}/in/b.jpg: truncated JPEG'):
    convert.convert(inputs, str(tmp_path / 'out'), files_per_shard=2)
  convert.convert(inputs, str(tmp_path / 'out2'), files_per_shard=2, skip_corrupt=True)
  assert _converted(str(tmp_path / 'out2')) == {f'{tmp_path}/in/a.jpg': [good]}


def test_a_rerun_with_other_inputs_is_refused(tmp_path):
  _jpeg(str(tmp_path / 'in' / 'a.jpg'), 0)
  convert.convert(sources.list_inputs(str(tmp_path / 'in')), str(tmp_path / 'out'))
  _jpeg(str(tmp_path / 'in' / 'b.jpg'), 1)
  with pytest.raises(ValueError, match='records another conversion'):
    convert.convert(sources.list_inputs(str(tmp_path / 'in')), str(tmp_path / 'out'))


def _run(images, out):
  return subprocess.Popen(
      [sys.executable, SCRIPT, f'--data.path={images}', '--data.format=folder', '--out', out,
       '--files_per_shard', '2'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_kill_mid_run_keeps_finished_shards_and_the_rerun_writes_each_image_once(tmp_path):
  images, out = str(tmp_path / 'images'), str(tmp_path / 'out')
  expected = {}
  for i in range(12):
    path = os.path.join(images, f'{i:02d}.jpg')
    if i == 6:  # a named pipe: reading it blocks until killed, inside shard 3 of 6
      os.makedirs(images, exist_ok=True)
      os.mkfifo(path)
    else:
      expected[path] = _jpeg(path, i)
  finished = [os.path.join(out, f'train.tfrecord-{k:05d}-of-00006') for k in range(3)]

  process = _run(images, out)
  deadline = time.monotonic() + 240  # a guard against a hang, not a timing
  while not all(map(os.path.exists, finished)) and time.monotonic() < deadline:
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.2)
  partial = os.path.join(out, 'train.tfrecord-00003-of-00006' + convert.PARTIAL)
  while not os.path.exists(partial) and time.monotonic() < deadline:
    time.sleep(0.2)
  assert os.path.exists(partial) and process.poll() is None
  process.send_signal(signal.SIGKILL)
  process.wait()
  kept = {path: os.stat(path).st_ino for path in finished}
  assert not os.path.exists(finished[-1].replace('00002-of', '00004-of'))

  os.remove(os.path.join(images, '06.jpg'))
  expected[os.path.join(images, '06.jpg')] = _jpeg(os.path.join(images, '06.jpg'), 6)
  rerun = _run(images, out)
  output, _ = rerun.communicate(timeout=300)
  assert rerun.returncode == 0, output[-3000:]

  assert {path: os.stat(path).st_ino for path in finished} == kept  # not rewritten
  assert _converted(out) == {path: [data] for path, data in expected.items()}
  assert not glob.glob(os.path.join(out, '*' + convert.PARTIAL))
  assert '12/12' in output  # the progress bar counts the kept shards' images too
