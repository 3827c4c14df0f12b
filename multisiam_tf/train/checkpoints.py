"""A run's checkpoints: where they are, the newest readable one, the online backbone of one; the
run's config.json (the workdir's lock: train/workdir_lock.py).

A workdir holds config.json (the run's config, its schedule in steps, and under `run` what the
run resolved: precision, strategy, versions, commit), lock.json while a run trains in it, and
checkpoints/ckpt-<step> (model, optimizer, step, and the input position where it can be saved).
Checkpoints are found by listing their .index files, which TensorFlow writes last (after the data
files, by rename), so a save killed midway leaves no checkpoint that seems whole; the state file
`checkpoints/checkpoint` is only a hint, rewritten from the listing. The training driver writes
them; export, probing and fine-tuning read them through this module.
"""

from importlib import metadata
import json
import os
import re
import subprocess

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.models import multisiam

CHECKPOINTS = 'checkpoints'
CONFIG = 'config.json'
# Fields a restart may change: how long, how often, what it monitors, where the data service is.
_RESTART_MAY_CHANGE = ('train.', 'optim.', 'eval.', 'seed', 'data.service_address')
_INDEX = re.compile(r'ckpt-(\d+)\.index$')
_DATA = re.compile(r'ckpt-(\d+)\.data-\d+-of-\d+$')


class ConfigChanged(config_lib.ConfigError):
  """A restart's config differs from the workdir's in a field that would change the model."""


def checkpoint_path(directory, step):
  return os.path.join(directory, f'ckpt-{step}')


def list_steps(directory):
  """The steps of the checkpoints in `directory` that have an index file, ascending."""
  names = tf.io.gfile.listdir(directory) if tf.io.gfile.isdir(directory) else []
  return sorted(int(m.group(1)) for m in map(_INDEX.match, names) if m)


def read_config(workdir):
  """The config of workdir/config.json (its `run` record left out)."""
  with tf.io.gfile.GFile(os.path.join(workdir, CONFIG)) as f:
    fields = json.load(f)
  fields.pop(config_lib.RUN_RECORD, None)
  return ml_collections.ConfigDict(fields)


def _read_record(workdir):
  path = os.path.join(workdir, CONFIG)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f).get(config_lib.RUN_RECORD, {})


def write_config(config, workdir, run=None):
  """Writes workdir/config.json: `config` and, under `run`, the dict `run` with the history of
  changes. A workdir that holds another run's config is refused first (check_restart)."""
  record = _read_record(workdir)
  changed = {} if record is None else check_restart(config, read_config(workdir))
  history = (record or {}).get('changes', []) + ([changed] if changed else [])
  fields = json.loads(config.to_json_best_effort())
  fields[config_lib.RUN_RECORD] = {**(run or {}), 'changes': history}
  tf.io.gfile.makedirs(workdir)
  with tf.io.gfile.GFile(os.path.join(workdir, CONFIG), 'w') as f:
    json.dump(fields, f, indent=2)


def check_restart(config, saved):
  """{field: [saved, new]} of the fields a restart changes; raises ConfigChanged when one of
  them changes the model or its data (model.*, data.*)."""
  new, old = (config_lib.flatten(json.loads(c.to_json_best_effort())) for c in (config, saved))
  changed = {k: [old.get(k), new.get(k)] for k in sorted(old.keys() | new.keys())
             if old.get(k) != new.get(k)}
  refused = [k for k in changed if not k.startswith(_RESTART_MAY_CHANGE)]
  if refused:
    details = ', '.join(f'{k}: {changed[k][0]!r} in the workdir, {changed[k][1]!r} now'
                        for k in refused)
    raise ConfigChanged(f'this workdir holds a run of another config ({details}); these fields '
                        'cannot change on a restart. Start a new run with --workdir elsewhere, '
                        'or restart with the workdir\'s own config.json as --config')
  for k, (before, after) in changed.items():
    logging.info('restart changes %s: %r -> %r', k, before, after)
  return changed


def manager(checkpoint, workdir, strategy, chief, keep, restored=None):
  """A CheckpointManager: the chief writes into the workdir; other workers into a temporary
  directory that `save` deletes (every worker must take part in a save, tf.distribute's
  multi-worker rule). The chief first rewrites the state file from the checkpoints up to the
  `restored` one, so that a damaged state file or newer damaged checkpoint misleads nothing."""
  if not chief:
    directory = os.path.join(workdir, f'tmp_worker_{strategy.cluster_resolver.task_id}')
    return tf.train.CheckpointManager(checkpoint, directory, 1)
  directory = os.path.join(workdir, CHECKPOINTS)
  if restored:
    kept = [checkpoint_path(directory, s) for s in list_steps(directory)
            if s <= step_of(restored)]
    tf.compat.v1.train.update_checkpoint_state(directory, restored, kept)
  return tf.train.CheckpointManager(checkpoint, directory, keep)


def save(checkpoints, step, chief):
  path = checkpoints.save(checkpoint_number=step)
  if chief:
    logging.info('saved %s', path)
  else:
    tf.io.gfile.rmtree(checkpoints.directory)


def step_of(path):
  return int(re.search(r'ckpt-(\d+)$', path).group(1))


def restore(checkpoint, path):
  """Restores every object of `checkpoint` from `path`; raises ValueError naming what is wrong
  (a missing or damaged file, or tensors of another model)."""
  try:
    checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
  except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
    raise ValueError(f'checkpoint {path} cannot be restored: {_cause(path, e)}') from e


def _cause(path, error):
  """The damaged file where the error is one of reading, else the error itself."""
  index = path + '.index'
  if not tf.io.gfile.exists(index):
    return f'{index} is missing'
  if isinstance(error, (IndexError, tf.errors.DataLossError, tf.errors.OutOfRangeError)):
    data = tf.io.gfile.glob(path + '.data-*') or [path + '.data-*']
    return f'{" or ".join(data)} is damaged (truncated or overwritten): {error}'
  return f'{type(error).__name__}: {error}'


def restore_newest(checkpoint, directory):
  """Restores the newest readable checkpoint in `directory`; returns its path, None if none.

  A damaged newest checkpoint is skipped, with a warning naming the bad file, for the one before;
  a first save that was killed midway is no checkpoint (a warning says so).
  """
  paths = [checkpoint_path(directory, s) for s in list_steps(directory)]
  newest_error = None
  for path in reversed(paths):
    try:
      restore(checkpoint, path)
      return path
    except ValueError as e:
      logging.warning('%s; trying the previous checkpoint', e)
      newest_error = newest_error or e
  started = _started_steps(directory)
  if len(started) == 1 and not _index_readable(checkpoint_path(directory, started[0])):
    # A first save killed midway: its index, the last file a save writes, is missing or cut.
    logging.warning('the save of step %d was interrupted (no complete index file); starting '
                    'afresh', started[0])
    return None
  if started:
    # Every checkpoint failing alike is more often code or config that changed than damage.
    cause = newest_error or 'every one has data files but no .index file'
    raise RuntimeError(
        f'no readable checkpoint in {directory} (steps {", ".join(map(str, started))}); the '
        f'newest: {cause}. If they were written by another version of the model or input code, '
        f'resume with that version; else move {directory} away to restart')
  return None


def _started_steps(directory):
  """The steps of every checkpoint a save began: those with a data or an index file."""
  names = tf.io.gfile.listdir(directory) if tf.io.gfile.isdir(directory) else []
  return sorted({int(m.group(1)) for pattern in (_INDEX, _DATA) for m in map(pattern.match, names)
                 if m})


def _index_readable(path):
  try:
    tf.train.load_checkpoint(path)
    return True
  except (tf.errors.OpError, ValueError):
    return False


def restore_backbone(workdir, step=None):
  """(online backbone, config, step) of a run: the model rebuilt from config.json, only its
  online backbone restored from the newest readable checkpoint or the one of `step`."""
  config = read_config(workdir)
  directory = os.path.join(workdir, CHECKPOINTS)
  model = multisiam.build(config)
  # The same object path as in training (model/online_backbone), nothing else.
  only_backbone = tf.train.Checkpoint(model=tf.train.Checkpoint(
      online_backbone=model.online_backbone))
  if step is None:
    path = restore_newest(only_backbone, directory)
    if path is None:
      raise FileNotFoundError(f'no checkpoint in {directory}')
    step = step_of(path)
  else:
    path = checkpoint_path(directory, step)
    if step not in list_steps(directory):
      raise FileNotFoundError(f'no checkpoint of step {step} in {directory}; its steps: '
                              f'{list_steps(directory) or "none"}')
    restore(only_backbone, path)
  logging.info('restored the online backbone from %s', path)
  return model.online_backbone, config, step


def run_record(strategy, precision):
  """What a run resolved beside its config: the precision `auto` chose, the strategy and its
  replicas, the package versions and the git commit of this code."""
  return {'precision': precision, 'strategy': type(strategy).__name__,
          'replicas': strategy.num_replicas_in_sync,
          'versions': {'tensorflow': tf.__version__, 'keras': keras.__version__,
                       'numpy': np.__version__, 'ml_collections': _version('ml_collections')},
          'git_commit': _git_commit()}


def _version(package):
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return ''


def _git_commit():
  """HEAD of the checkout this package runs from, '-dirty' when it has changes; '' outside git."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    head = subprocess.run(['git', '-C', here, 'rev-parse', 'HEAD'], capture_output=True,
                          text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(['git', '-C', here, 'status', '--porcelain', '--untracked-files=no'],
                           capture_output=True, text=True, timeout=10, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return ''
  return head + ('-dirty' if dirty else '')
