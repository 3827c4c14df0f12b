"""A run's checkpoints: where they are, the newest readable one, the online backbone of one.

A workdir holds config.json (the run's config, its schedule in steps) and checkpoints/ckpt-<step>
(model, optimizer, step, and the input position where it can be saved). The training driver
writes them; export, probing and fine-tuning read them through this module.
"""

import json
import os
import re

from absl import logging
import ml_collections
import tensorflow as tf

from multisiam_tf.models import multisiam

CHECKPOINTS = 'checkpoints'
CONFIG = 'config.json'


def write_config(config, workdir):
  """Writes the run's config as workdir/config.json."""
  tf.io.gfile.makedirs(workdir)
  with tf.io.gfile.GFile(os.path.join(workdir, CONFIG), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))


def read_config(workdir):
  with tf.io.gfile.GFile(os.path.join(workdir, CONFIG)) as f:
    return ml_collections.ConfigDict(json.load(f))


def manager(checkpoint, workdir, strategy, chief, keep):
  """A CheckpointManager: the chief writes into the workdir; other workers into a temporary
  directory that `save` deletes (every worker must take part in a save, tf.distribute's
  multi-worker rule)."""
  if chief:
    return tf.train.CheckpointManager(checkpoint, os.path.join(workdir, CHECKPOINTS), keep)
  directory = os.path.join(workdir, f'tmp_worker_{strategy.cluster_resolver.task_id}')
  return tf.train.CheckpointManager(checkpoint, directory, 1)


def save(checkpoints, step, chief):
  path = checkpoints.save(checkpoint_number=step)
  if chief:
    logging.info('saved %s', path)
  else:
    tf.io.gfile.rmtree(checkpoints.directory)


def restore_newest(checkpoint, directory):
  """Restores the newest readable checkpoint in `directory`; returns its path, None if none.

  A corrupt or partial newest checkpoint is skipped with a warning for the one before it.
  """
  state = tf.train.get_checkpoint_state(directory)
  paths = list(state.all_model_checkpoint_paths) if state else []
  for path in reversed(paths):
    try:
      checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
      return path
    except (tf.errors.OpError, ValueError, AssertionError) as e:
      logging.warning('checkpoint %s is unreadable, trying the previous one: %s', path, e)
  if paths:
    raise RuntimeError(f'no readable checkpoint among {paths}; move {directory} away to restart')
  return None


def newest_step(workdir):
  """The step of a run's newest checkpoint."""
  directory = os.path.join(workdir, CHECKPOINTS)
  path = tf.train.latest_checkpoint(directory)
  if path is None:
    raise FileNotFoundError(f'no checkpoint in {directory}')
  return int(re.search(r'ckpt-(\d+)$', path).group(1))


def restore_backbone(workdir, step=None):
  """(online backbone, config) of a run: the model rebuilt from config.json, only its online
  backbone restored from the newest checkpoint or the one of `step`."""
  config = read_config(workdir)
  step = newest_step(workdir) if step is None else step
  path = os.path.join(workdir, CHECKPOINTS, f'ckpt-{step}')
  model = multisiam.build(config)
  # The same object path as in training (model/online_backbone), nothing else.
  only_backbone = tf.train.Checkpoint(model=tf.train.Checkpoint(
      online_backbone=model.online_backbone))
  only_backbone.read(path).expect_partial().assert_existing_objects_matched()
  logging.info('restored the online backbone from %s', path)
  return model.online_backbone, config
