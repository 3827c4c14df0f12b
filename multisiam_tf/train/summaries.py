"""What a run shows while it trains: TensorBoard scalars and images, the log line, a progress bar.

TensorBoard events go to workdir/train/: every metric as a scalar, and pictures of the two views
with their overlap outlined and of the K-means clusters of view 1's target map.
"""

import sys
import time

from absl import logging
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from multisiam_tf import palette
from multisiam_tf.data import augment
from multisiam_tf.models import align

EVENTS = 'train'
_IMAGES = 4  # examples drawn in each TensorBoard image summary


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


def write_scalars(step, metrics):
  """Every metric as a TensorBoard scalar, and one log line."""
  for name, value in metrics.items():
    write_scalar(name, value, step)
  logging.info('step %d: %s', step, ', '.join(f'{k} {v:.4g}' for k, v in sorted(metrics.items())))


def write_images(model, strategy, iterator, step, chief):
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
  colours = palette.PALETTE  # numpy: no TF op may run before a multi-worker strategy exists
  colours = tf.gather(tf.constant(colours, tf.float32) / 255, assignment % len(colours))
  colours = tf.where(flip[:, None, None, None], tf.reverse(colours, axis=[2]), colours)
  return tf.image.resize(colours, size, method='nearest')


class Progress:
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
