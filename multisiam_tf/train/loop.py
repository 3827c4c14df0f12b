"""The pretraining driver, one for every tf.distribute strategy.

`train` runs `train.steps` optimizer updates of MultiSiam: a tf.function runs `steps_per_loop`
updates through `strategy.run` (not `model.fit`, which fails under MultiWorkerMirroredStrategy,
keras-team/keras#20585), each update averaging the gradients of `accumulate_steps` micro-batches.
Between loops the host writes TensorBoard summaries and the progress line, checkpoints, and
stops on SIGTERM (after a checkpoint) or on a non-finite loss (without one).

A workdir holds: config.json, checkpoints/ckpt-<step>, train/ (TensorBoard events).
"""

import json
import math
import os
import re
import signal
import sys
import time

from absl import logging
import keras
import ml_collections
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from multisiam_tf.data import augment
from multisiam_tf.data import pipeline
from multisiam_tf.eval import visualize
from multisiam_tf.models import align
from multisiam_tf.models import multisiam
from multisiam_tf.train import distribute
from multisiam_tf.train import lars
from multisiam_tf.train import schedules

CHECKPOINTS = 'checkpoints'
EVENTS = 'train'
CONFIG = 'config.json'
_IMAGES = 4  # examples drawn in each TensorBoard image summary


def train(config, workdir, strategy):
  """Pretrains per `config` in `workdir`, resuming from its newest checkpoint; returns the model."""
  chief = distribute.is_chief(strategy)
  distribute.choose_precision(config.train.precision, strategy)
  if chief:
    tf.io.gfile.makedirs(workdir)
    with tf.io.gfile.GFile(os.path.join(workdir, CONFIG), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
  keras.utils.set_random_seed(config.seed)  # the same initial weights for the same seed
  with strategy.scope():
    model = build_model(config)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
  state = {'model': model, 'optimizer': model.optimizer, 'step': step}
  keep_position = _position_checkpointable(config, strategy)
  if keep_position:
    state['iterator'] = iter(_distributed_dataset(config, strategy, config.seed))
  checkpoint = tf.train.Checkpoint(**state)
  restored = restore_newest(checkpoint, os.path.join(workdir, CHECKPOINTS))
  logging.info('resumed from %s' if restored else 'starting from scratch%s', restored or '')
  # Without a saved position, a restart draws fresh data rather than replaying the first batches.
  iterator = state['iterator'] if keep_position else iter(
      _distributed_dataset(config, strategy, config.seed + int(step.numpy())))
  manager = tf.train.CheckpointManager(
      checkpoint, _checkpoint_dir(workdir, strategy, chief),
      max_to_keep=config.train.keep_checkpoints if chief else 1)
  writer = (tf.summary.create_file_writer(os.path.join(workdir, EVENTS)) if chief
            else tf.summary.create_noop_writer())
  with writer.as_default(), _Preemption() as preemption:
    _run(config, strategy, model, step, iterator, manager, chief, preemption)
  return model


def build_model(config):
  """MultiSiam with every variable and its optimizer (LARS, warmup-cosine lr) built.

  Call under strategy.scope() after choose_precision: mixed_float16 adds loss scaling.
  """
  model = multisiam.MultiSiam(config)
  model.build_variables()
  model.compile(optimizer=make_optimizer(config))
  model.optimizer.build(model.online_variables)  # slots exist before a restore fills them
  return model


def make_optimizer(config):
  """LARS on lr = base_lr * (batch_size * accumulate_steps) / 256, warmup then cosine."""
  t, o = config.train, config.optim
  lr = schedules.WarmupCosine(o.base_lr, t.batch_size * t.accumulate_steps, o.warmup_steps,
                              t.steps)
  optimizer = lars.LARS(learning_rate=lr, momentum=o.momentum, weight_decay=o.weight_decay,
                        trust_coefficient=o.trust_coefficient)
  if keras.mixed_precision.global_policy().name == 'mixed_float16':
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def make_train_loop(model, strategy, step, accumulate_steps):
  """tf.function (iterator, num_steps) -> metrics of the last update run, averaged over replicas.

  Each update draws `accumulate_steps` micro-batches, sums their gradients, divides by
  accumulate_steps and applies once. The loop stops early after a non-finite loss; `step` then
  names the update that produced it.
  """
  def replica_update(micro_batches):
    grads, metrics = None, []
    for batch in micro_batches:  # unrolled: a replica may not all-reduce (sync BN) in a while loop
      g, m = model.gradients(batch)
      grads = g if grads is None else [a + b for a, b in zip(grads, g)]
      metrics.append(m)
    mean = {k: tf.add_n([m[k] for m in metrics]) / accumulate_steps for k in metrics[0]}
    mean.update(model.apply_update([g / accumulate_steps for g in grads]))
    return mean

  # No autograph: the model's control flow is Python's, and converting it doubles tracing time.
  @tf.function(autograph=False, experimental_attributes={'_noinline': True})
  def update(iterator):
    micro_batches = [next(iterator) for _ in range(accumulate_steps)]
    per_replica = strategy.run(replica_update, args=(micro_batches,))
    step.assign_add(1)
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()}

  @tf.function(autograph=False)
  def train_loop(iterator, num_steps):
    def running(i, metrics):
      return tf.logical_and(i < num_steps, tf.math.is_finite(metrics['loss']))

    # The first update runs outside the loop: it fixes the structure the loop carries.
    _, metrics = tf.while_loop(running, lambda i, _: (i + 1, update(iterator)),
                               (tf.constant(1, tf.int64), update(iterator)))
    return metrics

  return train_loop


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
  with tf.io.gfile.GFile(os.path.join(workdir, CONFIG)) as f:
    config = ml_collections.ConfigDict(json.load(f))
  step = newest_step(workdir) if step is None else step
  path = os.path.join(workdir, CHECKPOINTS, f'ckpt-{step}')
  model = multisiam.MultiSiam(config)
  model.build_variables()
  # The same object path as in training (model/online_backbone), nothing else.
  only_backbone = tf.train.Checkpoint(model=tf.train.Checkpoint(
      online_backbone=model.online_backbone))
  only_backbone.read(path).expect_partial().assert_existing_objects_matched()
  logging.info('restored the online backbone from %s', path)
  return model.online_backbone, config


def _run(config, strategy, model, step, iterator, manager, chief, preemption):
  """Loops until train.steps, a SIGTERM (checkpoint, return) or a non-finite loss (raise)."""
  t = config.train
  train_loop = make_train_loop(model, strategy, step, t.accumulate_steps)
  any_worker = _any_worker_fn(strategy)
  images_per_step = t.batch_size * t.accumulate_steps
  progress = _Progress(t.steps) if chief else None
  current = int(step.numpy())
  while current < t.steps:
    start = time.time()
    metrics = train_loop(iterator, tf.constant(_loop_length(current, t), tf.int64))
    metrics = {k: float(v) for k, v in metrics.items()}
    seconds = time.time() - start
    done, current = current, int(step.numpy())
    if not math.isfinite(metrics['loss']):
      raise FloatingPointError(
          f'loss is {metrics["loss"]} at step {current}; stopped without saving, the last good '
          f'checkpoint is {tf.train.latest_checkpoint(manager.directory)}')
    metrics['images_per_sec'] = (current - done) * images_per_step / seconds
    if progress:
      progress.update(current, metrics)
    if _crossed(done, current, t.log_every) or current == t.steps:
      _write_scalars(current, metrics)
    if _crossed(done, current, t.image_every):
      _write_images(model, strategy, iterator, current, chief)
    stop = bool(any_worker(preemption.requested))
    if _crossed(done, current, t.checkpoint_every) or current == t.steps or stop:
      _save(manager, current, chief)
    if stop:
      logging.warning('SIGTERM: stopped at step %d after saving a checkpoint', current)
      return


def _loop_length(step, t):
  """Steps to run next: steps_per_loop, cut to land on every log, image and checkpoint step."""
  return min([t.steps_per_loop, t.steps - step]
             + [every - step % every for every in (t.log_every, t.image_every, t.checkpoint_every)])


def _crossed(before, after, every):
  return after // every > before // every


def _position_checkpointable(config, strategy):
  """Plain tf.data iterators are checkpointable; tf.distribute's distributed iterators and
  tf.data service streams are not, so only single-device runs keep their input position."""
  default = not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy()
  return default and not config.data.service_address


def _distributed_dataset(config, strategy, seed):
  return strategy.distribute_datasets_from_function(
      lambda context: pipeline.make_dataset(config, seed=seed, input_context=context))


def _checkpoint_dir(workdir, strategy, chief):
  """The chief writes into the workdir; other workers into a temporary directory they delete
  (every worker must take part in a save, tf.distribute's multi-worker rule)."""
  if chief:
    return os.path.join(workdir, CHECKPOINTS)
  return os.path.join(workdir, f'tmp_worker_{strategy.cluster_resolver.task_id}')


def _save(manager, step, chief):
  path = manager.save(checkpoint_number=step)
  if chief:
    logging.info('saved %s', path)
  else:
    tf.io.gfile.rmtree(manager.directory)


def _any_worker_fn(strategy):
  """tf.function flag -> True if the flag is set on any worker, so all stop at the same step."""
  @tf.function
  def any_worker(flag):
    per_replica = strategy.run(tf.identity, args=(tf.cast(flag, tf.int32),))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None) > 0
  return any_worker


class _Preemption:
  """Context in which SIGTERM only sets `requested`; the loop saves and returns at its end."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM: saving a checkpoint at the end of this loop')
    self.requested = True

  def __enter__(self):
    self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    signal.signal(signal.SIGTERM, self._previous)


def _write_scalars(step, metrics):
  for name, value in metrics.items():
    write_scalar(name, value, step)
  logging.info('step %d: %s', step, ', '.join(f'{k} {v:.4g}' for k, v in sorted(metrics.items())))


# tf.summary.scalar / image need the tensorboard package; core TF writes the same records with
# the plugin metadata that TensorBoard's scalar and image dashboards read.
def _metadata(plugin, data_class):
  return summary_pb2.SummaryMetadata(
      plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
      data_class=data_class)


def write_scalar(name, value, step):
  """tf.summary.scalar without the tensorboard package."""
  return tf.summary.write(name, tf.cast(value, tf.float32), step=step,
                          metadata=_metadata('scalars', summary_pb2.DATA_CLASS_SCALAR))


def write_image(name, images, step):
  """tf.summary.image of float [B, H, W, 3] in [0, 1] without the tensorboard package."""
  pixels = tf.image.convert_image_dtype(images, tf.uint8, saturate=True)
  height, width = pixels.shape[1:3]
  encoded = tf.map_fn(tf.image.encode_png, pixels, fn_output_signature=tf.string)
  tensor = tf.concat([tf.constant([str(width), str(height)]), encoded], axis=0)
  return tf.summary.write(name, tensor, step=step,
                          metadata=_metadata('images', summary_pb2.DATA_CLASS_BLOB_SEQUENCE))


def _write_images(model, strategy, iterator, step, chief):
  """The two views with their overlap drawn, and the K-means clusters of view 1's target map.

  Every worker takes the batch (a distributed iterator may synchronise workers); the chief writes.
  """
  batch = strategy.experimental_local_results(next(iterator))[0]
  if not chief:
    return
  batch = {k: v[:_IMAGES] for k, v in batch.items()}
  for i, j in ((1, 2), (2, 1)):
    write_image(f'view{i}', overlap_boxes_drawn(
        batch[f'view{i}'], batch[f'box{i}'], batch[f'box{j}'], batch[f'flip{i}']), step)
  assignment = model.cluster_maps(batch)
  if assignment is not None:  # byol has no 2D branch
    write_image('clusters_view1', cluster_colours(
        assignment, batch['flip1'], batch['view1'].shape[1:3]), step)


def overlap_boxes_drawn(views, box, other_box, flip):
  """float [B, S, S, 3] in [0, 1]: de-normalised views with the other view's overlap outlined."""
  pixels = tf.clip_by_value(views * tf.constant(augment.STD) + tf.constant(augment.MEAN), 0, 1)
  overlap, _ = align.intersection_in_views(box, other_box)
  y1, x1, y2, x2 = tf.unstack(overlap, axis=-1)
  # Boxes are unflipped; the pixels were flipped.
  overlap = tf.where(flip[:, None], tf.stack([y1, 1 - x2, y2, 1 - x1], axis=-1), overlap)
  return tf.image.draw_bounding_boxes(pixels, overlap[:, None], colors=[[1.0, 0.0, 0.0, 1.0]])


def cluster_colours(assignment, flip, size):
  """float [B, S, S, 3]: one colour per cluster, in the (possibly flipped) pixels of the view."""
  palette = visualize.PALETTE  # numpy: no TF op may run before a multi-worker strategy exists
  colours = tf.gather(tf.constant(palette, tf.float32) / 255, assignment % len(palette))
  colours = tf.where(flip[:, None, None, None], tf.reverse(colours, axis=[2]), colours)
  return tf.image.resize(colours, size, method='nearest')


class _Progress:
  """A one-line progress bar with ETA on stdout, rewritten in place on a terminal."""

  def __init__(self, total, width=30):
    self.total, self.width = total, width
    self.start_step, self.start_time = None, None

  def update(self, step, metrics):
    now = time.time()
    if self.start_time is None:  # the first loop includes tracing: time from its end
      self.start_step, self.start_time = step, now
    rate = (step - self.start_step) / max(now - self.start_time, 1e-9)
    eta = _duration((self.total - step) / rate) if rate > 0 else '?'
    filled = self.width * step // self.total
    line = (f'{step}/{self.total} [{"=" * filled}{"." * (self.width - filled)}] '
            f'loss {metrics["loss"]:.4f} {metrics["images_per_sec"]:.1f} img/s ETA {eta}')
    end = '\r' if sys.stdout.isatty() and step < self.total else '\n'
    sys.stdout.write(line + end)
    sys.stdout.flush()


def _duration(seconds):
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f'{hours}:{minutes:02d}:{seconds:02d}'
