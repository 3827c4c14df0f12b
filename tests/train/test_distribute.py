"""Strategy and precision choice; MirroredStrategy and MultiWorkerMirroredStrategy runs."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.train import distribute

HERE = os.path.dirname(os.path.abspath(__file__))


def test_default_and_auto_strategies_on_a_cpu_host():
  assert distribute.make_strategy('default') is tf.distribute.get_strategy()
  if not tf.config.list_physical_devices('GPU'):
    assert distribute.make_strategy('auto') is tf.distribute.get_strategy()
  assert distribute.is_chief(tf.distribute.get_strategy())
  with pytest.raises(ValueError, match='unknown strategy'):
    distribute.make_strategy('horovod')


@pytest.mark.parametrize('gpus,flags,expected', [
    ([], set(), 'float32'),
    ([], {'avx2', 'avx512_bf16'}, 'mixed_bfloat16'),
    ([], {'amx_bf16'}, 'mixed_bfloat16'),
    ([(8, 0), (9, 0)], set(), 'mixed_bfloat16'),
    ([(8, 0), (7, 5)], {'amx_bf16'}, 'mixed_float16'),
    ([(7, 0)], set(), 'mixed_float16'),
])
def test_auto_precision(gpus, flags, expected):
  strategy = tf.distribute.get_strategy()
  assert distribute.auto_precision(strategy, gpu_capabilities=gpus, flags=flags) == expected


def test_cpu_flags_read_cpuinfo(tmp_path):
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu sse avx512_bf16\n\nflags\t\t: fpu amx_bf16\n')
  assert distribute.cpu_flags(str(cpuinfo)) == {'fpu', 'sse', 'avx512_bf16', 'amx_bf16'}
  assert distribute.cpu_flags(str(tmp_path / 'missing')) == set()


def test_choose_precision_sets_the_keras_policy():
  before = keras.mixed_precision.global_policy().name
  try:
    assert distribute.choose_precision('mixed_float16', tf.distribute.get_strategy()) == (
        'mixed_float16')
    assert keras.mixed_precision.global_policy().name == 'mixed_float16'
  finally:
    keras.mixed_precision.set_global_policy(before)


def test_mirrored_sync_bn_matches_one_device(tmp_path, subprocess_env, lane_precision):
  runs = {name: subprocess.Popen(  # in parallel: a process each
      [sys.executable, os.path.join(HERE, 'mirrored_check.py'), name, str(tmp_path / name),
       lane_precision],
      env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for name in ('default', 'mirrored')}
  losses = {}
  for name, run in runs.items():
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    losses[name] = json.loads(stdout.strip().splitlines()[-1])
  one, two = losses['default'], losses['mirrored']
  assert sorted(one) == sorted(two) == ['1', '2', '3']
  # In bfloat16 the replicas' partial sums round differently, and the tiny config's large
  # learning rate amplifies that after the first update: only step 1 (initial weights) compares.
  compared, rel = (['1', '2', '3'], 1e-3) if lane_precision == 'float32' else (['1'], 3e-3)
  for step in compared:
    assert two[step] == pytest.approx(one[step], rel=rel, abs=1e-5), step
  assert len(set(one.values())) == 3  # the weights moved between steps


def test_multi_worker_runs_with_identical_weights(tmp_path, image_folder, subprocess_env,
                                                  free_ports):
  ports = free_ports(2)
  cluster = {'worker': [f'127.0.0.1:{p}' for p in ports]}
  workdir = str(tmp_path / 'run')
  workers = []
  for index in range(2):
    env = dict(subprocess_env, TF_CONFIG=json.dumps(
        {'cluster': cluster, 'task': {'type': 'worker', 'index': index}}))
    workers.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'multiworker_worker.py'), image_folder, workdir,
         str(tmp_path / f'weights{index}.npz')],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  for worker in workers:
    output, _ = worker.communicate(timeout=600)
    assert worker.returncode == 0, output[-3000:]
  chief, other = (np.load(tmp_path / f'weights{i}.npz') for i in range(2))
  # Online and target networks both: each holds a conv1/kernel.
  assert sum(name.endswith(':conv1/kernel') for name in chief.files) == 2
  for name in chief.files:
    np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
  # Only the chief keeps checkpoints, config and logs; the other worker's temporary save is gone.
  assert sorted(os.listdir(workdir)) == ['checkpoints', 'config.json', 'metrics.jsonl', 'train']
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints')).endswith('ckpt-3')


def test_sigterm_to_one_worker_stops_both_at_one_step_and_both_resume(
    tmp_path, image_folder, subprocess_env, free_ports):
  """SIGTERM to the second worker only: the flag is summed over the workers at the loop's end,
  so both save the same step and exit 42 (Preempted); restarted, both resume from it."""
  workdir = str(tmp_path / 'run')

  def start(steps):
    cluster = {'worker': [f'127.0.0.1:{p}' for p in free_ports(2)]}
    command = [sys.executable, os.path.join(HERE, '..', '..', 'scripts', 'pretrain.py'),
               f'--config={os.path.join(HERE, "..", "tiny_config.py")}',
               f'--config.data.path={image_folder}', f'--workdir={workdir}',
               '--strategy=multi_worker', f'--config.train.steps={steps}',
               '--config.train.batch_size=4', '--config.train.steps_per_loop=1',
               '--config.train.log_every=1', '--config.train.image_every=1000',
               '--config.train.checkpoint_every=1000', '--config.train.precision=float32']
    return [subprocess.Popen(command, env=dict(subprocess_env, TF_CONFIG=json.dumps(
        {'cluster': cluster, 'task': {'type': 'worker', 'index': i}})),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(2)]

  def steps_logged():
    try:
      with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return len(f.readlines())
    except FileNotFoundError:
      return 0

  workers = start(steps=400)
  try:
    deadline = time.time() + 600
    while steps_logged() < 3 and time.time() < deadline and workers[0].poll() is None:
      time.sleep(0.2)
    assert steps_logged() >= 3, workers[0].communicate(timeout=60)[0][-3000:]
    workers[1].send_signal(signal.SIGTERM)
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  assert [w.returncode for w in workers] == [42, 42], [o[-2000:] for o in outputs]
  saved = tf.train.get_checkpoint_state(os.path.join(workdir, 'checkpoints'))
  stopped = int(saved.model_checkpoint_path.rsplit('-', 1)[1])
  assert 3 <= stopped < 400
  for output in outputs:
    assert f'SIGTERM: stopped at step {stopped} after saving a checkpoint' in output

  workers = start(steps=stopped + 2)  # a schedule field: a restart may change it
  outputs = [worker.communicate(timeout=600)[0] for worker in workers]
  assert [w.returncode for w in workers] == [0, 0], [o[-2000:] for o in outputs]
  for output in outputs:
    assert f'resumed from {workdir}/checkpoints/ckpt-{stopped}' in output
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints')).endswith(
      f'ckpt-{stopped + 2}')
