"""Restarts through the pretrain script: SIGKILL mid-run then resume; a bad config."""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from multisiam_tf.train import checkpoints
from multisiam_tf.train import summaries

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PRETRAIN = os.path.join(ROOT, 'scripts', 'pretrain.py')


def _pretrain(workdir, images, *flags):
  return [sys.executable, PRETRAIN, f'--config={os.path.join(ROOT, "tests", "tiny_config.py")}',
          f'--config.data.path={images}', f'--workdir={workdir}', '--strategy=default', *flags]


def _wait_for_checkpoint(directory, process, timeout=600):
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    if tf.train.latest_checkpoint(directory):
      return
    time.sleep(0.1)
  raise AssertionError(f'no checkpoint in {directory}; process returned {process.poll()}')


def test_sigkill_then_restart_resumes_and_matches_an_uninterrupted_run(
    reference_run, image_folder, tmp_path, subprocess_env, read_events, lane_precision):
  workdir = str(tmp_path / 'run')
  saved = os.path.join(workdir, checkpoints.CHECKPOINTS)
  precision = f'--config.train.precision={lane_precision}'  # the reference run's
  first = subprocess.Popen(_pretrain(workdir, image_folder, precision), env=subprocess_env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  _wait_for_checkpoint(saved, first)
  first.send_signal(signal.SIGKILL)
  first.wait(timeout=60)
  killed_at = int(tf.train.latest_checkpoint(saved).rsplit('-', 1)[1])
  assert killed_at in (2, 4)

  second = subprocess.run(_pretrain(workdir, image_folder, precision), env=subprocess_env,
                          capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-3000:]
  assert f'resumed from {saved}/ckpt-{killed_at}' in second.stderr
  assert f'{killed_at + 1}/6 [' in second.stdout  # the progress line counts on from there
  assert tf.train.latest_checkpoint(saved).endswith('ckpt-6')
  # The input position is restored with the weights: the resumed steps see the same batches.
  reference = read_events(os.path.join(reference_run[0], summaries.EVENTS))['loss']
  resumed = read_events(os.path.join(workdir, summaries.EVENTS))['loss']
  for step in range(killed_at + 1, 7):
    assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-6), step


def test_pretrain_rejects_a_bad_config_before_any_work(tmp_path, image_folder, subprocess_env):
  workdir = str(tmp_path / 'run')
  result = subprocess.run(_pretrain(workdir, image_folder, '--config.data.iou_threshold=1.5'),
                          env=subprocess_env, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert 'data.iou_threshold' in result.stderr
  assert not os.path.exists(workdir)
