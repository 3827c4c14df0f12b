"""What a run shows while it trains: TensorBoard, metrics.jsonl, the log line, a progress bar.

workdir/train/ holds the TensorBoard events (tf.summary): every metric as a scalar; every
train.image_every steps the two views with their overlap outlined, the K-means clusters of view
1's target map and histograms of view 1's online projections; for the hparams dashboard the
config's fields, with the metrics as columns (their last values: the final metrics).
workdir/metrics.jsonl holds the same scalars for scripts, one JSON object per logged step:
{"step": 100, "loss": 0.71, ...}. A run resumed from step N first drops the lines past N (the
updates it redoes) and a line cut short by a kill, so that each step appears once.
"""

import json
import os

from absl import logging
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from multisiam_tf import palette
from multisiam_tf import progress as progress_lib
from multisiam_tf.data import augment
from multisiam_tf.models import align

EVENTS = 'train'
METRICS = 'metrics.jsonl'
PROFILE = 'profile'  # a profiler trace's folder in the workdir, which TensorBoard's Profile tab reads
_IMAGES = 4  # examples drawn in each TensorBoard image summary
_SHOWN = ('loss', 'images_per_sec')  # the progress bar's columns


class RunLog:
  """The chief's TensorBoard writer, metrics.jsonl and progress bar; on other workers the same
  calls write nothing."""

  def __init__(self, workdir, first_step, steps, chief):
    self.chief, self._first_step = chief, first_step
    self.writer = (tf.summary.create_file_writer(os.path.join(workdir, EVENTS)) if chief
                   else tf.summary.create_noop_writer())
    self._metrics_path = os.path.join(workdir, METRICS)
    if chief and tf.io.gfile.exists(self._metrics_path):
      _keep_until(self._metrics_path, first_step)
    self._tags = {}  # every scalar written, in order: the hparams table's columns
    # Counts this session's updates: its rate and remaining time stay right after a resume.
    self._bar = progress_lib.bar(steps - first_step, stateful_metrics=_SHOWN) if chief else None

  def progress(self, step, metrics):
    if self._bar:
      self._bar.update(step - self._first_step, [(k, metrics[k]) for k in _SHOWN])

  def scalars(self, step, scalars):
    """Every scalar to TensorBoard (the default writer) and metrics.jsonl, and one log line."""
    for name, value in scalars.items():
      tf.summary.scalar(name, value, step=step)
      self._tags[name] = None
    if self.chief:
      with tf.io.gfile.GFile(self._metrics_path, 'a') as f:
        f.write(json.dumps({'step': step, **scalars}) + '\n')
    logging.info('step %d: %s', step, ', '.join(f'{k} {v:.4g}' for k, v in sorted(scalars.items())))

  def write_hparams(self, config, trial):
    """The hparams dashboard's row of this run: every config field, and the scalars written as
    columns (their last values), so that the runs of an ablation compare in one table."""
    fields = dict(_flat(config.to_dict()))
    hp.hparams_config(hparams=[hp.HParam(name) for name in fields],
                      metrics=[hp.Metric(tag) for tag in self._tags])
    hp.hparams(fields, trial_id=trial)


def _keep_until(path, step):
  """Rewrites metrics.jsonl `path` without its lines past `step` and its unreadable lines."""
  with tf.io.gfile.GFile(path) as f:
    lines = f.read().splitlines()
  kept = []
  for line in lines:
    try:
      if json.loads(line)['step'] <= step:
        kept.append(line)
    except (ValueError, KeyError, TypeError):  # a line a kill cut short
      pass
  if len(kept) < len(lines):
    logging.info('%s: dropped %d lines past step %d or cut short, to be logged again', path,
                 len(lines) - len(kept), step)
    with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
      f.write(''.join(line + '\n' for line in kept))
    tf.io.gfile.rename(path + '.tmp', path, overwrite=True)


def _flat(tree, prefix=''):
  """(dotted name, value) of a nested dict, values the plugin cannot hold (tuples, None) as text."""
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _flat(value, f'{prefix}{key}.')
    else:
      yield prefix + key, value if isinstance(value, (bool, int, float, str)) else str(value)


def write_images(model, strategy, iterator, step, chief):
  """The two views with their overlap drawn, the K-means clusters of view 1's target map, and
  histograms of view 1's online projections.

  Every worker takes the batch (a distributed iterator may synchronise workers); the chief writes.
  """
  batch = strategy.experimental_local_results(next(iterator))[0]
  if not chief:
    return
  batch = {k: v[:_IMAGES] for k, v in batch.items()}
  for i, j in ((1, 2), (2, 1)):
    tf.summary.image(f'view{i}', overlap_boxes_drawn(
        batch[f'view{i}'], batch[f'box{i}'], batch[f'box{j}'], batch[f'flip{i}']), step=step,
                     max_outputs=_IMAGES)
  assignment = model.cluster_maps(batch)
  if assignment is not None:  # byol has no 2D branch
    tf.summary.image('clusters_view1', cluster_colours(
        assignment, batch['flip1'], batch['view1'].shape[1:3]), step=step, max_outputs=_IMAGES)
  for name, projection in model.projections(batch['view1'], batch['flip1']).items():
    tf.summary.histogram(f'projection_{name}', tf.cast(projection, tf.float32), step=step)


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
  colours = palette.PALETTE  # numpy: no TF op may run before a multi-worker strategy exists
  colours = tf.gather(tf.constant(colours, tf.float32) / 255, assignment % len(colours))
  colours = tf.where(flip[:, None, None, None], tf.reverse(colours, axis=[2]), colours)
  return tf.image.resize(colours, size, method='nearest')


class Profiler:
  """A hook of `loop.train`: given steps (START, END), a profiler trace of the updates after
  step START up to END, into workdir/profile/, which TensorBoard shows with the `profile` extra
  installed; given no steps, nothing. Hooks run between loops, after an update: a trace asked
  from step 0, or a run resumed inside the window, starts after the first update."""

  def __init__(self, steps, workdir):
    self._steps, self._logdir = tuple(steps), os.path.join(workdir, PROFILE)
    self._running = False

  def next_step(self, step):
    """The next step at which the loop must hand over: the trace's start or end."""
    if not self._steps or step >= self._steps[1]:
      return None
    return self._steps[1] if self._running else max(self._steps[0], step + 1)

  def __call__(self, model, step):
    del model
    if self._steps and not self._running and self._steps[0] <= step < self._steps[1]:
      tf.profiler.experimental.start(self._logdir)
      self._running = True
    elif self._steps and step >= self._steps[1]:
      self.stop()
    return {}

  def stop(self):
    """Ends the trace if one runs (a run may end before END)."""
    if self._running:
      tf.profiler.experimental.stop()
      self._running = False
