"""The workdir lock: workdir/lock.json (host, pid, start time) keeps a second run out of a
workdir while one trains in it; a lock whose holder is gone is taken over."""

import contextlib
import datetime
import json
import os
import socket

from absl import logging

LOCK = 'lock.json'


class WorkdirLocked(RuntimeError):
  """Another live run holds the workdir."""


@contextlib.contextmanager
def lock(workdir, chief=True):
  """Holds workdir/lock.json (host, pid, start time) while the block runs; the chief's alone.

  A lock whose holder is gone (this host, no such process) is taken over with a warning;
  a live holder, or one on another host, raises WorkdirLocked naming it. A workdir on a remote
  file system (gs://...) has no atomic create, so it is not locked (a warning says so).
  """
  if not chief:
    yield
    return
  if '://' in workdir:
    logging.warning('%s is not on a local file system: it is not locked against a second run',
                    workdir)
    yield
    return
  os.makedirs(workdir, exist_ok=True)
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
  """Puts the lock file in place, whole, if none exists: written aside, then hard-linked (a link
  fails if the name exists), so of two runs exactly one creates it and no run reads it half
  written."""
  aside = f'{path}.{os.getpid()}'
  with open(aside, 'w') as f:
    json.dump(holder, f)
  try:
    os.link(aside, path)
  except FileExistsError:
    return False
  finally:
    os.remove(aside)
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
  if _read_lock(path) == holder:  # not a lock another restart has just put in its place
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
