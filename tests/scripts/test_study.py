"""scripts/study.py as a user runs it: two rows (and a third sharing a run) x two seeds on tiny
runs, killed mid-study and run again; --print_commands; a bad row."""

import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from multisiam_tf.data import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDY = os.path.join(ROOT, 'scripts', 'study.py')
# The small scale cut to the tiny test model: 32 px, 4 steps of batch 2, a checkpoint every 2.
TINY = ['--config.data.format=folder', '--config.data.image_size=32',
        '--config.data.shuffle_buffer=8', '--config.model.backbone.width=0.25',
        '--config.model.head.hidden_dim=32', '--config.model.head.output_dim=32',
        '--config.train.batch_size=2', '--config.train.steps=4', '--config.optim.warmup_steps=1',
        '--config.train.steps_per_loop=2', '--config.train.image_every=100']
ROWS = 'table4/byol,table4/cluster,table2a/iou_0.5'  # cluster is the run of table2a/iou_0.5
RUNS = ('table2a/iou_0.5', 'table1/byol')  # table4/byol is table1/byol's run at the small scale


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('scenes'))
  synthetic.write_dataset(os.path.join(folder, 'train'), 6, 48, 64)
  synthetic.write_dataset(os.path.join(folder, 'val'), 4, 48, 64, seed=100)
  return folder


@pytest.fixture
def env():
  return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')


def study_command(data, out):
  return [sys.executable, STUDY, f'--rows={ROWS}', '--seeds=0,1', '--scale=small', f'--out={out}',
          '--strategy=default', '--eval_every=2', f'--eval_train={data}/train',
          f'--eval_val={data}/val', '--num_classes=9', '--eval_size', '32', '32',
          '--finetune_steps=2', '--finetune_batch_size=2', '--probe_epochs=1',
          f'--config.data.path={data}/train/images', *TINY]


def workdir(out, name, seed):
  return os.path.join(out, *name.split('/'), f'seed{seed}')


def wait_for(paths, process, timeout=900):
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    if all(os.path.exists(p) for p in paths):
      return
    time.sleep(0.1)
  raise AssertionError(f'{paths} not all written; the study returned {process.poll()}')


def stored_miou(out, name, seed, kind, step):
  with open(os.path.join(workdir(out, name, seed), 'study', f'{kind}-{step}.json')) as f:
    return json.load(f)['miou']


def test_study_killed_then_rerun_trains_each_run_once_and_completes(data, tmp_path, env):
  out = str(tmp_path / 'study')
  first = workdir(out, RUNS[0], 0)
  first_checkpoint = os.path.join(first, 'checkpoints', 'ckpt-4.index')
  killed = subprocess.Popen(study_command(data, out), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  # Killed (with its pretraining child) while the second run pretrains.
  wait_for([first_checkpoint, os.path.join(workdir(out, RUNS[1], 0), 'config.json')], killed)
  os.killpg(killed.pid, signal.SIGKILL)
  killed.wait(timeout=60)
  assert not os.path.exists(os.path.join(out, 'study.json'))
  finished_at = os.stat(first_checkpoint).st_mtime_ns
  with open(os.path.join(first, 'pretrain.log')) as f:
    first_log = f.read()

  rerun = subprocess.run(study_command(data, out), env=env, capture_output=True, text=True,
                         timeout=1200)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert os.stat(first_checkpoint).st_mtime_ns == finished_at  # not trained again
  with open(os.path.join(first, 'pretrain.log')) as f:
    assert f.read() == first_log
  assert not os.path.exists(os.path.join(out, 'table4', 'cluster'))  # shared with table2a
  for name in RUNS:
    for seed in (0, 1):
      assert os.path.exists(os.path.join(workdir(out, name, seed), 'checkpoints', 'ckpt-4.index'))

  with open(os.path.join(out, 'study.json')) as f:
    study = json.load(f)
  assert study['seeds'] == [0, 1] and study['kinds'] == ['finetune', 'probe']
  rows = {r['name']: r for t in study['tables'] for r in t['rows']}
  assert list(rows) == ['table2a/iou_0.5', 'table4/byol', 'table4/cluster']
  assert rows['table4/cluster']['run'] == 'table2a/iou_0.5'
  assert (rows['table4/byol']['paper_miou'], rows['table4/cluster']['paper_miou']) == (67.2, 70.0)
  for name, row in rows.items():
    for kind in ('finetune', 'probe'):
      values = [stored_miou(out, row['run'], seed, kind, 4) for seed in (0, 1)]
      assert row[kind]['values'] == pytest.approx(values), (name, kind)
      assert row[kind]['mean'] == pytest.approx(np.mean(values))
      assert row[kind]['std'] == pytest.approx(np.std(values, ddof=1))
    assert [(p['step'], p['n']) for p in row['probe']['curve']] == [(2, 2), (4, 2)]
    assert [(p['step'], p['n']) for p in row['finetune']['curve']] == [(4, 2)]  # the probe's
  for kind in ('finetune', 'probe'):
    values = [stored_miou(out, 'random_init', seed, kind, 0) for seed in (0, 1)]
    assert study['random_init'][kind]['mean'] == pytest.approx(np.mean(values))
  with open(os.path.join(out, 'study.md')) as f:
    text = f.read()
  assert '| cluster |' in text and 'same run as table2a/iou_0.5' in text and '| 67.2 |' in text
  assert os.path.getsize(os.path.join(out, 'study.png')) > 1000
  assert '## Table 4: components' in rerun.stdout

  # Run a third time: nothing to train or evaluate, every stored record kept.
  records = {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out}/**/study/*.json',
                                                           recursive=True)}
  # runs x seeds x (probes at steps 2 and 4, fine-tuning at 4) + random inits x kinds
  assert len(records) == 2 * 2 * 3 + 2 * 2
  again = subprocess.run(study_command(data, out), env=env, capture_output=True, text=True,
                         timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert {p: os.stat(p).st_mtime_ns for p in records} == records
  assert 'pretraining' not in again.stderr and 'evaluating' not in again.stderr


def test_print_commands_prints_one_pretraining_per_run(tmp_path, env):
  out = str(tmp_path / 'study')
  result = subprocess.run(
      [sys.executable, STUDY, '--rows=table4', '--seeds=0,1', '--scale=paper', f'--out={out}',
       '--print_commands', '--config.data.path=/data/waymo/*.tfrecord'],
      env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  commands = [shlex.split(line) for line in result.stdout.strip().split('\n')]
  paper = os.path.join(ROOT, 'configs', 'paper.py')
  runs = {'table4/byol': 'table4/byol', 'table4/byol_iou': 'table4/byol_iou',
          'table2a/iou_0.5': 'table4/cluster', 'table4/attention': 'table4/attention',
          'table4/offset': 'table4/offset', 'table4/offset_nonorm': 'table4/offset_nonorm'}
  expected = [[sys.executable, os.path.join(ROOT, 'scripts', 'pretrain.py'), '--strategy=auto',
               f'--config={paper}:{name},paper', f'--workdir={workdir(out, name, seed)}',
               '--config.data.path=/data/waymo/*.tfrecord', f'--config.seed={seed}']
              for seed in (0, 1) for name in runs]
  assert sorted(commands) == sorted(expected)
  assert not os.path.exists(out)


def test_an_unknown_row_lists_the_known_ones(tmp_path, env):
  result = subprocess.run([sys.executable, STUDY, '--rows=table4/nope', '--scale=camvid',
                           f'--out={tmp_path}', '--print_commands'],
                          env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert "unknown row 'table4/nope'; known rows: table4/byol, table4/byol_iou" in result.stderr
