"""The workdir lock: workdir/lock.json (host, pid, start time) keeps a second run out of a
workdir while one trains in it; a lock whose holder is gone is taken over."""

import contextlib
import datetime
import json
import os
import socket

from absl import logging
import tensorflow as tf

LOCK = 'lock.json'


class WorkdirLocked(RuntimeError):
  """Another live run holds the workdir."""


@contextlib.contextmanager
def lock(workdir, chief=True):
  """Holds workdir/lock.json (host, pid, start time) while the block runs; the chief's alone.

  A lock whose holder is gone (this host, no such process) is taken over with a warning;
  a live holder, or one on another host, raises WorkdirLocked naming it.
  """
  if not chief:
    yield
    return
  tf.io.gfile.makedirs(workdir)
  path = os.path.join(workdir, LOCK)
  mine = {'host': socket.gethostname(), 'pid': os.getpid(),
          'started': datetime.datetime.now().isoformat(timespec='seconds')}
  while not _create(path, mine):
    _take_over_if_stale(path, workdir)
  try:
    yield
  finally:
    if _read_lock(path) == mine:
      os.remove(path)


def _create(path, holder):
  """Writes the lock file if none exists (O_EXCL: of two runs exactly one creates it)."""
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
  except FileExistsError:
    return False
  with os.fdopen(fd, 'w') as f:
    json.dump(holder, f)
  return True


def _read_lock(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _take_over_if_stale(path, workdir):
  holder = _read_lock(path)
  if holder and holder.get('host') == socket.gethostname() and _alive(holder['pid']):
    raise WorkdirLocked(
        f'{workdir} is in use by the run of pid {holder["pid"]} on {holder["host"]}, started '
        f'{holder["started"]} ({path}); wait for it to end, stop it, or use another --workdir')
  if holder and holder.get('host') != socket.gethostname():
    raise WorkdirLocked(
        f'{workdir} is in use by the run of pid {holder["pid"]} on host {holder["host"]}, '
        f'started {holder["started"]} ({path}); if that run is gone, delete {path}')
  logging.warning('taking over the lock of a run that is gone: %s', holder or 'unreadable')
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True
