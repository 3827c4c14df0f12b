"""Whole tiny runs in this process: config, checkpoints, logs, images, the NaN guard, SIGTERM."""

import io
import json
import os
import signal
import threading

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from multisiam_tf.train import checkpoints
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import summaries

METRICS = ('loss', 'loss_1d', 'loss_2d', 'tau', 'lr', 'fallback_rate', 'projection_std',
           'images_per_sec')


def _checkpoint_steps(workdir):
  state = tf.train.get_checkpoint_state(os.path.join(workdir, checkpoints.CHECKPOINTS))
  return [int(p.rsplit('-', 1)[1]) for p in state.all_model_checkpoint_paths]


def test_run_writes_config_checkpoints_and_scalars(reference_run, read_events):
  workdir, model = reference_run
  with open(os.path.join(workdir, checkpoints.CONFIG)) as f:
    assert json.load(f)['train']['steps'] == 6
  assert _checkpoint_steps(workdir) == [2, 4, 6]  # keep_checkpoints=3
  assert int(model.optimizer.iterations.numpy()) == 6
  events = read_events(os.path.join(workdir, summaries.EVENTS))
  for name in METRICS:
    assert sorted(events[name]) == [1, 2, 3, 4, 5, 6], name
    assert all(np.isfinite(v) for v in events[name].values()), name
  assert events['lr'][6] == pytest.approx(0.0, abs=1e-6)  # cosine ends at 0
  assert events['tau'][1] == pytest.approx(0.996, abs=2e-3)
  assert len(set(events['loss'].values())) == 6


def test_images_show_views_and_clusters(reference_run, read_events):
  workdir, _ = reference_run
  events = read_events(os.path.join(workdir, summaries.EVENTS))
  for tag in ('view1', 'view2', 'clusters_view1'):
    assert sorted(events[tag]) == [4], tag
    width, height, *pngs = events[tag][4]
    assert (int(width), int(height), len(pngs)) == (32, 32, 2)
    pixels = np.asarray(PIL.Image.open(io.BytesIO(pngs[0])))
    assert pixels.shape == (32, 32, 3) and pixels.std() > 0
  # The overlap box is drawn in pure red on the views.
  views = [np.asarray(PIL.Image.open(io.BytesIO(p))) for p in events['view1'][4][2:]]
  assert any(((v == [255, 0, 0]).all(axis=-1)).sum() >= 4 for v in views)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    image_folder, tiny, tmp_path, monkeypatch):
  make_dataset = loop.pipeline.make_dataset

  def nan_in_third_batch(config, **kwargs):
    def poison(index, batch):
      bad = tf.equal(index, 2)
      return dict(batch, view1=tf.where(bad, np.nan, batch['view1']))
    return make_dataset(config, **kwargs).enumerate().map(poison)

  monkeypatch.setattr(loop.pipeline, 'make_dataset', nan_in_third_batch)
  workdir = str(tmp_path)
  with pytest.raises(FloatingPointError, match=r'at step 3\b.*ckpt-2'):
    loop.train(tiny(image_folder), workdir, distribute.make_strategy('default'))
  assert _checkpoint_steps(workdir) == [2]


def test_sigterm_saves_a_checkpoint_and_returns(image_folder, tiny, tmp_path):
  default_handler = signal.getsignal(signal.SIGTERM)

  def terminate_once_handled():
    while signal.getsignal(signal.SIGTERM) is default_handler:
      threading.Event().wait(0.05)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=terminate_once_handled, daemon=True).start()
  # In epochs: 25 epochs of 8 images at batch 2 are 100 steps.
  config = tiny(image_folder, epochs=25, checkpoint_every=50, image_every=100)
  model = loop.train(config, str(tmp_path), distribute.make_strategy('default'))
  stopped = int(model.optimizer.iterations.numpy())
  assert 1 <= stopped < 100
  with open(os.path.join(tmp_path, checkpoints.CONFIG)) as f:
    written = json.load(f)
  assert (written['train']['steps'], written['train']['epochs']) == (100, None)
  assert written['optim']['warmup_steps'] == 1
  assert _checkpoint_steps(str(tmp_path)) == [stopped]
  assert signal.getsignal(signal.SIGTERM) is default_handler
