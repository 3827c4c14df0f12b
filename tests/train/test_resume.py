"""Restarts through the pretrain script: SIGKILL, SIGTERM, a second run, resume; a bad config."""

import logging
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.train import checkpoints
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
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


def _wait_for(condition, process, what, timeout=600):
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    if condition():
      return True
    time.sleep(0.002)
  if process.poll() is None:
    raise AssertionError(f'{what}: not within {timeout} s')
  return False


def _saving(directory):
  """Whether a save is under way: TensorFlow writes into ckpt-<step>_temp, then renames."""
  return any(name.endswith('_temp') for name in os.listdir(directory))


def _interrupt(process, saved, moment, rng):
  """Waits for the process' first new checkpoint, then at `moment` sends its signal: 'save' as
  soon as the next save is under way, 'kill' or 'term' after a random delay. Returns whether it
  was sent (False: the run ended first) and whether a save was under way then."""
  start = (checkpoints.list_steps(saved) or [0])[-1]
  if not _wait_for(lambda: (checkpoints.list_steps(saved) or [0])[-1] > start, process,
                   'a new checkpoint'):
    return False, False
  if moment == 'save':
    if not _wait_for(lambda: _saving(saved), process, 'a save'):
      return False, False
  else:
    time.sleep(rng.uniform(0.0, 0.5))
  in_save = _saving(saved)
  process.send_signal(signal.SIGTERM if moment == 'term' else signal.SIGKILL)
  process.wait(timeout=120)
  return True, in_save


def test_kill_9_at_random_moments_then_restarts_reach_the_same_weights(
    image_folder, tiny, tmp_path, subprocess_env, caplog):
  """5 interruptions (kill -9 inside saves and at random moments, one SIGTERM: exit 42) of one
  run; a second run on its workdir is refused while one trains; each restart takes the dead
  run's lock over; the end state equals an uninterrupted run's in float32, bit for bit."""
  steps, rng = 16, random.Random(0)
  overrides = [f'--config.train.steps={steps}', '--config.train.checkpoint_every=1',
               '--config.train.steps_per_loop=1', '--config.train.precision=float32']
  workdir = str(tmp_path / 'run')
  saved = os.path.join(workdir, checkpoints.CHECKPOINTS)
  moments, hits, logs = ['save', 'kill', 'term', 'save', 'kill'], [], []
  for i, moment in enumerate(moments):
    log = open(tmp_path / f'log{i}.txt', 'w+')  # pylint: disable=consider-using-with
    logs.append(log)
    process = subprocess.Popen(_pretrain(workdir, image_folder, *overrides), env=subprocess_env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    if i == 0:  # a second run while this one trains
      _wait_for(lambda: os.path.exists(os.path.join(workdir, checkpoints.LOCK)), process, 'lock')
      locked = f'in use by the run of pid {process.pid}'
      with pytest.raises(checkpoints.WorkdirLocked, match=locked):
        loop.train(tiny(image_folder, steps=steps), workdir, distribute.make_strategy('default'))
    sent, in_save = _interrupt(process, saved, moment, rng)
    hits.append(in_save)
    if moment == 'term' and sent:
      assert process.returncode == loop.PREEMPTED_EXIT_CODE
      log.seek(0)
      assert f'exit code {loop.PREEMPTED_EXIT_CODE}' in log.read()
  assert any(hits), 'no interruption landed inside a save'
  for log in logs:
    log.close()
  final = subprocess.run(_pretrain(workdir, image_folder, *overrides), env=subprocess_env,
                         capture_output=True, text=True, timeout=600)
  assert final.returncode == 0, final.stderr[-3000:]
  assert 'taking over the lock of a run that is gone' in final.stderr
  with caplog.at_level(logging.INFO):
    loop.train(tiny(image_folder, steps=steps), workdir, distribute.make_strategy('default'))
  assert f'already complete at step {steps}' in caplog.text

  reference = str(tmp_path / 'reference')
  loop.train(tiny(image_folder, steps=steps), reference, distribute.make_strategy('default'))
  _assert_same_state(*(os.path.join(w, checkpoints.CHECKPOINTS, f'ckpt-{steps}')
                       for w in (reference, workdir)))


def _assert_same_state(path_a, path_b):
  """Every weight, slot and counter of two checkpoints equal (the input position aside)."""
  a, b = tf.train.load_checkpoint(path_a), tf.train.load_checkpoint(path_b)
  names = [n for n in a.get_variable_to_shape_map()
           if 'iterator' not in n and 'save_counter' not in n and n != '_CHECKPOINTABLE_OBJECT_GRAPH']
  assert len(names) > 50 and set(names) <= set(b.get_variable_to_shape_map())
  for name in names:
    np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
