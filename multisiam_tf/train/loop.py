"""The pretraining driver, one for every tf.distribute strategy.

`train` resolves the schedule (config.resolve_schedule), then runs `train.steps` optimizer updates
of the model: a tf.function runs `steps_per_loop` updates through `strategy.run` (not `model.fit`,
which fails under MultiWorkerMirroredStrategy, keras-team/keras#20585), each update averaging the
gradients of `accumulate_steps` micro-batches. Between loops the host writes summaries and the
progress line, checkpoints, and stops on SIGTERM (after a checkpoint) or on a non-finite loss
(without one). The workdir's layout: train/checkpoints.py and train/summaries.py.
"""

import copy
import math
import os
import signal
import time

from absl import logging
import keras
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.data import pipeline
from multisiam_tf.data import sources
from multisiam_tf.models import multisiam
from multisiam_tf.train import checkpoints
from multisiam_tf.train import distribute
from multisiam_tf.train import optimizers
from multisiam_tf.train import summaries
from multisiam_tf.train import workdir_lock


_GUARDED = ('loss', 'grad_norm')  # the run stops at the update where either is not finite


PREEMPTED_EXIT_CODE = 42  # Model Garden's: "preempted, checkpoint saved, restart me"


class Preempted(Exception):
  """SIGTERM stopped the run after it saved the checkpoint of `step`."""

  def __init__(self, step):
    super().__init__(f'SIGTERM: stopped at step {step} after saving a checkpoint')
    self.step = step


def train(config, workdir, strategy, hooks=()):
  """Pretrains per `config` in `workdir`, resuming from its newest checkpoint; returns the model.

  `hooks` run between loops: hook(model, step) -> scalars to log at that step, and
  hook.next_step(step) -> the next step (or None) at which a loop must end for it
  (eval/online.py's probe, summaries.Profiler). Raises Preempted after SIGTERM,
  config_lib.ConfigError for a config this strategy or this workdir cannot run,
  workdir_lock.WorkdirLocked while another run trains in the workdir.
  """
  chief = distribute.is_chief(strategy)
  with workdir_lock.lock(workdir, chief):
    config, model, step, iterator, saver, skipped = _start(config, workdir, strategy, chief)
    t, current = config.train, int(step.numpy())
    if current >= t.steps:
      logging.info('already complete at step %d (train.steps %d)', current, t.steps)
      return model
    train_loop = make_train_loop(model, strategy, step, t.accumulate_steps)
    any_worker = _any_worker_fn(strategy)
    log = summaries.RunLog(workdir, current, t.steps, chief)
    with log.writer.as_default(), _Preemption() as preemption:
      while current < t.steps:
        start = time.time()
        with pipeline.data_loss_as_such():
          metrics = train_loop(iterator, tf.constant(_loop_length(current, t, hooks), tf.int64))
        metrics = {k: float(v) for k, v in metrics.items()}
        seconds = time.time() - start
        done, current = current, int(step.numpy())
        _check_finite(metrics, current, saver.directory)
        metrics['images_per_sec'] = (current - done) * t.batch_size * t.accumulate_steps / seconds
        if skipped is not None:
          metrics['skipped_inputs'] = float(skipped.numpy())
        log.progress(current, metrics)
        logged = _crossed(done, current, t.log_every) or current == t.steps
        scalars = dict(metrics if logged else {}, **_run_hooks(hooks, model, current))
        if scalars:
          log.scalars(current, scalars)
        if _crossed(done, current, t.image_every):
          summaries.write_images(model, strategy, iterator, current, chief)
        stop = bool(any_worker(preemption.requested))
        if _crossed(done, current, t.checkpoint_every) or current == t.steps or stop:
          checkpoints.save(saver, current, chief)
        if stop:
          break
      log.write_hparams(config, os.path.basename(os.path.abspath(workdir)))
    if skipped is not None:
      logging.info('data: %d inputs skipped in this run (data.skip_corrupt)', skipped.numpy())
    if stop:
      raise Preempted(current)
    return model


def _check_finite(metrics, step, directory):
  if not all(math.isfinite(metrics[k]) for k in _GUARDED):
    steps = checkpoints.list_steps(directory)
    newest = checkpoints.checkpoint_path(directory, steps[-1]) if steps else 'none'
    raise FloatingPointError(
        f'{", ".join(f"{k} {metrics[k]}" for k in _GUARDED)} at step {step}; stopped without '
        f'saving, the last good checkpoint is {newest}')


def _run_hooks(hooks, model, step):
  scalars = {}
  for hook in hooks:
    scalars.update(hook(model, step))
  return scalars


def _with_num_examples(config, workdir):
  """`config` with data.num_examples counted from the source when it is 0 and a duration is in
  epochs, the count cached in the workdir so that a restart does not recount."""
  if not config_lib.needs_count(config):
    return config
  config = copy.deepcopy(config)
  config.data.num_examples = sources.num_examples(config.data, workdir)
  logging.info('data.num_examples: %d images in %s', config.data.num_examples, config.data.path)
  return config


def build_model(config):
  """The model of `config` with every variable and its optimizer (`optim.name`) built.

  `config` holds its schedule in steps (config.resolve_schedule). Call under strategy.scope()
  after choose_precision: mixed_float16 adds loss scaling.
  """
  model = multisiam.build(config)
  model.compile(optimizer=optimizers.make(config, model.online_variables))
  model.optimizer.build(model.online_variables)  # slots exist before a restore fills them
  return model


def make_train_loop(model, strategy, step, accumulate_steps):
  """tf.function (iterator, num_steps) -> metrics of the last update run, averaged over replicas.

  One update, on every replica: the gradient of eq. 11 (model.forward runs eqs. 1-11) averaged
  over `accumulate_steps` micro-batches, applied once by the optimizer (LARS), then the EMA target
  update of eq. 2 (model.apply_update). The loop stops early after a non-finite loss or gradient
  norm; `step` then names the update that produced it. `model.METRICS` names what it reports
  besides the gradient norm.
  """
  # The optimizer sums gradients over replicas: each replica and micro-batch adds its share.
  share = 1 / (strategy.num_replicas_in_sync * accumulate_steps)

  def replica_update(micro_batches):
    grads, metrics = [], []
    for batch in micro_batches:  # unrolled: a replica may not all-reduce (sync BN) in a while loop
      with tf.GradientTape() as tape:
        m, _ = model.forward(batch, training=True)
        loss = model.optimizer.scale_loss(m['loss'] * share)
      grads.append(tape.gradient(loss, model.online_variables))
      metrics.append(m)
    grads = [tf.add_n(g) for g in zip(*grads)]
    mean = {k: tf.add_n([m[k] for m in metrics]) / accumulate_steps for k in metrics[0]}
    # This replica's share; a non-finite entry anywhere makes the mean over replicas non-finite.
    mean['grad_norm'] = tf.cast(tf.linalg.global_norm(grads), tf.float32)
    mean.update(model.apply_update(grads))
    return mean

  # No autograph: the model's control flow is Python's, and converting it doubles tracing time.
  @tf.function(autograph=False)
  def train_loop(iterator, num_steps):
    def running(i, metrics):
      finite = [tf.math.is_finite(metrics[k]) for k in _GUARDED]
      return tf.logical_and(i < num_steps, tf.reduce_all(finite))

    # Each iteration is one update: replica_update on every replica, then the mean over replicas.
    updates, metrics = tf.while_loop(
        running,
        lambda i, _: (i + 1, _replica_mean(strategy, strategy.run(
            replica_update, args=([next(iterator) for _ in range(accumulate_steps)],)))),
        (tf.constant(0, tf.int64), {k: tf.zeros([]) for k in model.METRICS + ('grad_norm',)}))
    step.assign_add(updates)
    return metrics

  return train_loop


def _replica_mean(strategy, per_replica):
  return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
          for k, v in per_replica.items()}


def _skip_counter(data):
  """With data.skip_corrupt, the counter of inputs skipped since this process started (read
  ahead of training, by prefetching); None otherwise, and under a tf.data service, whose workers
  read and log."""
  if not data.skip_corrupt or data.service_address:
    return None
  return tf.Variable(0, dtype=tf.int64, trainable=False, name='skipped_inputs')


def _start(config, workdir, strategy, chief):
  """(config, model, step, iterator, checkpoint manager, skipped-input counter): the config with
  its schedule in steps, recorded in the workdir; the rest restored from the newest checkpoint if
  any. The counter (_skip_counter) counts the inputs skipped as corrupt."""
  config = config_lib.resolve_schedule(_with_num_examples(config, workdir))
  config_lib.check_replica_batch(config, strategy.num_replicas_in_sync)
  precision = distribute.choose_precision(config.train.precision, strategy)
  if chief:  # refuses another run's workdir before writing anything
    checkpoints.write_config(config, workdir, checkpoints.run_record(strategy, precision))
  skipped = _skip_counter(config.data)
  keras.utils.set_random_seed(config.seed)  # the same initial weights for the same seed
  with strategy.scope():
    model = build_model(config)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
  state = {'model': model, 'optimizer': model.optimizer, 'step': step}
  keep_position = _position_checkpointable(config, strategy)
  if keep_position:
    state['iterator'] = iter(_distributed_dataset(config, strategy, config.seed, skipped))
  checkpoint = tf.train.Checkpoint(**state)
  restored = checkpoints.restore_newest(checkpoint, os.path.join(workdir, checkpoints.CHECKPOINTS))
  logging.info('resumed from %s' if restored else 'starting from scratch%s', restored or '')
  # Without a saved position, a restart draws fresh data rather than replaying the first batches.
  iterator = state['iterator'] if keep_position else iter(
      _distributed_dataset(config, strategy, config.seed + int(step.numpy()), skipped))
  saver = checkpoints.manager(checkpoint, workdir, strategy, chief, config.train.keep_checkpoints,
                              restored)
  return config, model, step, iterator, saver, skipped


def _loop_length(step, t, hooks):
  """Steps to run next: steps_per_loop, cut to land on every log, image, checkpoint and hook
  step."""
  stops = [s for s in (hook.next_step(step) for hook in hooks) if s is not None]
  return min([t.steps_per_loop, t.steps - step] + [s - step for s in stops]
             + [every - step % every for every in (t.log_every, t.image_every, t.checkpoint_every)])


def _crossed(before, after, every):
  return after // every > before // every


def _position_checkpointable(config, strategy):
  """Plain tf.data iterators are checkpointable; tf.distribute's distributed iterators and
  tf.data service streams are not, so only single-device runs keep their input position."""
  default = not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy()
  return default and not config.data.service_address


def _distributed_dataset(config, strategy, seed, skipped):
  return strategy.distribute_datasets_from_function(
      lambda context: pipeline.make_dataset(config, seed=seed, input_context=context,
                                            skipped=skipped))


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
