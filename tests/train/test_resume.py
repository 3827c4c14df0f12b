"""Restarts through the pretrain script: SIGKILL, SIGTERM, a second run, resume; a bad config."""

from concurrent import futures
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.train import checkpoints
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import summaries
from multisiam_tf.train import workdir_lock

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
  resumed_steps = 6 - killed_at  # the progress bar counts this session's updates
  assert f'{resumed_steps}/{resumed_steps} - ' in second.stdout
  assert tf.train.latest_checkpoint(saved).endswith('ckpt-6')
  # The input position is restored with the weights: the resumed steps see the same batches.
  reference = read_events(os.path.join(reference_run[0], summaries.EVENTS))['loss']
  resumed = read_events(os.path.join(workdir, summaries.EVENTS))['loss']
  for step in range(killed_at + 1, 7):
    assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-6), step
  with open(os.path.join(workdir, summaries.METRICS)) as f:  # each step once, the redone ones too
    assert [json.loads(line)['step'] for line in f] == [1, 2, 3, 4, 5, 6]


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


# Each start of pretrain.py costs a TensorFlow import and a trace: the kills share few starts, on
# two workdirs in parallel (the two cores), without image summaries (a trace more per start).
_RUN = ['--config.train.steps=12', '--config.train.image_every=100',
        '--config.train.precision=float32']
_SAVE_EVERY_STEP = ['--config.train.checkpoint_every=1', '--config.train.steps_per_loop=1']


def _interrupted_run(command, workdir, moments, seed, env, while_first_trains=lambda p: None):
  """Starts `command` on `workdir` once per moment and interrupts it there (_interrupt, random
  delays drawn from `seed`), then runs it to the end; returns, per moment, whether the
  interruption landed inside a save."""
  saved, rng, hits = os.path.join(workdir, checkpoints.CHECKPOINTS), random.Random(seed), []
  for i, moment in enumerate(moments):
    with tempfile.TemporaryFile('w+') as log:
      process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
      try:
        if i == 0:
          while_first_trains(process)
        sent, in_save = _interrupt(process, saved, moment, rng)
      finally:  # a failed check leaves no run behind
        if process.poll() is None:
          process.kill()
      hits.append(in_save)
      if moment == 'term' and sent:
        assert process.returncode == loop.PREEMPTED_EXIT_CODE
        log.seek(0)
        assert f'exit code {loop.PREEMPTED_EXIT_CODE}' in log.read()
  final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
  assert final.returncode == 0, final.stderr[-3000:]
  assert 'taking over the lock of a run that is gone' in final.stderr
  return hits


def test_kill_9_at_random_moments_then_restarts_reach_the_same_weights(
    image_folder, tiny, tmp_path, subprocess_env):
  """5 interruptions (kill -9 inside saves and at random moments, one SIGTERM: exit 42) of two
  runs; a second run on a workdir is refused while one trains; each restart takes the dead
  run's lock over; both end states equal an uninterrupted run's in float32, bit for bit."""
  workdirs = [str(tmp_path / name) for name in ('a', 'b', 'reference')]
  command = lambda workdir, flags=tuple(_SAVE_EVERY_STEP): _pretrain(
      workdir, image_folder, *_RUN, *flags)

  def second_run_refused(process):
    _wait_for(lambda: os.path.exists(os.path.join(workdirs[0], workdir_lock.LOCK)), process, 'lock')
    with pytest.raises(workdir_lock.WorkdirLocked,
                       match=f'in use by the run of pid {process.pid}'):
      loop.train(tiny(image_folder), workdirs[0], distribute.make_strategy('default'))

  def run_b_then_reference():
    hits = _interrupted_run(command(workdirs[1]), workdirs[1], ['kill', 'save'], 2, subprocess_env)
    # One loop and one save: where loops end must not change the updates (compared below too).
    one_loop = ['--config.train.steps_per_loop=12', '--config.train.checkpoint_every=12']
    reference = subprocess.run(command(workdirs[2], one_loop), env=subprocess_env,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    return hits

  with futures.ThreadPoolExecutor(2) as pool:
    a = pool.submit(_interrupted_run, command(workdirs[0]), workdirs[0], ['save', 'term', 'kill'],
                    1, subprocess_env, second_run_refused)
    b = pool.submit(run_b_then_reference)
    hits = a.result() + b.result()
  assert any(hits), 'no interruption landed inside a save'
  last = [os.path.join(w, checkpoints.CHECKPOINTS, 'ckpt-12') for w in workdirs]
  _assert_same_state(last[2], last[0])
  _assert_same_state(last[2], last[1])


def _assert_same_state(path_a, path_b):
  """Every weight, slot and counter of two checkpoints equal (the input position aside)."""
  a, b = tf.train.load_checkpoint(path_a), tf.train.load_checkpoint(path_b)
  names = [n for n in a.get_variable_to_shape_map()
           if 'iterator' not in n and 'save_counter' not in n and n != '_CHECKPOINTABLE_OBJECT_GRAPH']
  assert len(names) > 50 and set(names) <= set(b.get_variable_to_shape_map())
  for name in names:
    np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
