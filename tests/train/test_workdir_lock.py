"""The workdir lock under runs that start at once, and its take-over of a dead run's lock."""

import json
import os
import subprocess
import sys

import pytest

from multisiam_tf.train import workdir_lock

# Takes the lock, holds it a second, says whether it got it.
_TAKE = '''
import sys, time
from multisiam_tf.train import workdir_lock
try:
  with workdir_lock.lock(sys.argv[1]):
    print('held', flush=True)
    time.sleep(1)
except workdir_lock.WorkdirLocked:
  print('refused', flush=True)
'''


def test_of_runs_started_at_once_exactly_one_holds_the_workdir(tmp_path):
  workdir = str(tmp_path / 'run')
  runs = [subprocess.Popen([sys.executable, '-c', _TAKE, workdir], stdout=subprocess.PIPE,
                           text=True) for _ in range(6)]
  said = sorted(run.communicate(timeout=120)[0].strip() for run in runs)
  assert said == ['held'] + ['refused'] * 5
  assert os.listdir(workdir) == []  # the holder removed its lock, and no file was left aside


def test_no_run_can_read_a_half_written_lock(tmp_path, monkeypatch):
  """A run that finds lock.json reads its holder whole: the file appears only once written."""
  path = os.path.join(tmp_path, workdir_lock.LOCK)
  dump = json.dump

  def dump_checked(holder, f):
    assert not os.path.exists(path), 'lock.json exists before its holder is written'
    dump(holder, f)
  monkeypatch.setattr(workdir_lock.json, 'dump', dump_checked)
  with workdir_lock.lock(str(tmp_path)):
    with open(path) as f:
      assert json.load(f)['pid'] == os.getpid()


def test_a_dead_runs_lock_is_taken_over_and_a_live_one_refused(tmp_path, caplog):
  workdir = str(tmp_path)
  path = os.path.join(workdir, workdir_lock.LOCK)
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                        capture_output=True, text=True, check=True)
  with open(path, 'w') as f:
    json.dump({'host': os.uname().nodename, 'pid': int(dead.stdout), 'started': 'then'}, f)
  with workdir_lock.lock(workdir):
    with open(path) as f:
      assert json.load(f)['pid'] == os.getpid()
    with pytest.raises(workdir_lock.WorkdirLocked, match=f'pid {os.getpid()}'):
      with workdir_lock.lock(workdir):
        pass
  assert 'taking over the lock of a run that is gone' in caplog.text
  assert not os.path.exists(path)


def test_a_remote_workdir_is_not_locked_and_says_so(caplog):
  with workdir_lock.lock('gs://bucket/run'):  # touches nothing: no client, no bucket needed
    pass
  assert 'gs://bucket/run is not on a local file system: it is not locked' in caplog.text
