"""Fine-tuning evaluation: a backbone and an FCN head trained end to end, scored by mIoU.

The paper's downstream protocol (FCN-16s fine-tuned in Detectron2, METHOD.md section 7) in
miniature: SGD with momentum 0.9 and weight decay, poly (or cosine) decay of the learning rate,
random horizontal flips and scale jitter with random crops; BatchNorm trains on batch statistics
throughout, as in the backbone's pretraining. The labelled images are decoded and resized once
into memory, and the augmentation runs inside the tf.function train step. The same recipe from a
random init of the same architecture is the baseline a pretrained backbone must beat; the linear
probe (probe.py) stays the cheap monitor, and the two share the scores and the loss.
"""

import contextlib
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from multisiam_tf.data import augment
from multisiam_tf.eval import probe
from multisiam_tf.models import resnet

SCHEDULES = ('poly', 'cosine')
PRECISIONS = ('float32', 'mixed_bfloat16')  # mixed_float16 would need loss scaling
POLY_POWER = 0.9  # FCN, DeepLab, mmseg


class Segmenter(keras.Model):
  """Backbone + FCN head: normalised images [B, H, W, 3] -> float32 logits [B, H, W, K].

  The head is a 3x3 conv-BN-ReLU and a 1x1 classifier on C5 (mmseg's and Detectron2's FCN
  heads); with use_c4, a 1x1 classifier on C4 is added to the C5 scores resized to C4 (FCN-16s).
  Scores are resized bilinearly to the input size.
  """

  def __init__(self, backbone, num_classes, use_c4=False, head_channels=256, **kwargs):
    super().__init__(name='segmenter', **kwargs)
    self.backbone = backbone
    self.head = keras.Sequential([
        keras.layers.Conv2D(head_channels, 3, padding='same', use_bias=False,
                            kernel_initializer='he_normal', name='head_conv'),
        resnet.BatchNorm(momentum=resnet.BN_MOMENTUM, epsilon=resnet.BN_EPSILON,
                         name='head_bn'),
        keras.layers.ReLU(name='head_relu'),
        _classifier(num_classes, 'score_c5'),
    ], name='head')
    self.score_c4 = _classifier(num_classes, 'score_c4') if use_c4 else None

  def call(self, images, training=False):
    endpoints = self.backbone(images, training=training)
    scores = tf.cast(self.head(endpoints['c5'], training=training), tf.float32)
    if self.score_c4 is not None:
      c4 = tf.cast(self.score_c4(endpoints['c4']), tf.float32)
      scores = c4 + tf.image.resize(scores, tf.shape(c4)[1:3])
    return tf.image.resize(scores, tf.shape(images)[1:3])


def _classifier(num_classes, name):
  # mmseg's normal_init(std=0.01): every class starts near uniform
  return keras.layers.Conv2D(num_classes, 1, name=name,
                             kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))


@contextlib.contextmanager
def _policy(precision):
  """Builds layers under `precision`, then restores the global dtype policy."""
  if precision not in PRECISIONS:
    raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(precision)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def build(backbone, architecture, num_classes, use_c4=False, head_channels=256,
          precision='float32', seed=0):
  """A Segmenter on a copy of `backbone` (which stays as it is) built under `precision`."""
  depth, width, output_stride = architecture
  keras.utils.set_random_seed(seed)  # the head's initial weights
  with _policy(precision):
    copy = resnet.ResNet(depth, width=width, output_stride=output_stride)
    copy.set_weights(backbone.get_weights())
    model = Segmenter(copy, num_classes, use_c4, head_channels)
    model(tf.zeros([1, 32, 32, 3]))
  return model


def augment_batch(images, labels, seed, crop, scale_range, ignore_index):
  """Scale jitter, random crop and horizontal flip of a batch, one crop_and_resize box each.

  Each image is scaled by s ~ U(scale_range) and a crop of `crop` (h, w) pixels of the scaled
  image is taken at a uniform position, mirrored with p 0.5; where the scaled image is smaller
  than the crop, the crop reaches past its edges onto the ImageNet mean (normalised 0) and
  `ignore_index`. Images are sampled bilinearly and labels by nearest neighbour at the same
  points, so the two stay aligned.

  Args:
    images: uint8 [B, H, W, 3]. labels: uint8 [B, H, W]. seed: int [2].

  Returns:
    Normalised float32 images [B, h, w, 3] and int32 labels [B, h, w].
  """
  batch = tf.shape(images)[0]
  u = tf.random.stateless_uniform([batch, 4], seed)
  scale = scale_range[0] + (scale_range[1] - scale_range[0]) * u[:, :1]
  extent = tf.constant(crop, tf.float32) / (scale * tf.cast(tf.shape(images)[1:3], tf.float32))
  start = u[:, 1:3] * (1.0 - extent)  # negative where the crop is larger than the scaled image
  end = start + extent
  flip = u[:, 3] < 0.5  # swapped x1, x2: crop_and_resize samples right to left
  boxes = tf.stack([start[:, 0], tf.where(flip, end[:, 1], start[:, 1]),
                    end[:, 0], tf.where(flip, start[:, 1], end[:, 1])], axis=1)
  index = tf.range(batch)
  x = tf.image.crop_and_resize(augment.normalize(tf.cast(images, tf.float32) / 255.0), boxes,
                               index, crop, extrapolation_value=0.0)
  y = tf.image.crop_and_resize(tf.cast(labels[..., None], tf.float32), boxes, index, crop,
                               method='nearest', extrapolation_value=float(ignore_index))
  return x, tf.cast(y[..., 0], tf.int32)


def learning_rate(schedule, lr, steps):
  """Poly (power 0.9) or cosine decay from lr to 0 over `steps`, per step."""
  if schedule == 'poly':
    return keras.optimizers.schedules.PolynomialDecay(lr, steps, 0.0, power=POLY_POWER)
  if schedule == 'cosine':
    return keras.optimizers.schedules.CosineDecay(lr, steps)
  raise ValueError(f'schedule must be one of {SCHEDULES}, got {schedule!r}')


def _batches(num, batch_size, rng):
  """Endless index batches of one shuffled pass after another, every batch full."""
  queue = np.zeros([0], np.int64)
  while True:
    while len(queue) < batch_size:
      queue = np.concatenate([queue, rng.permutation(num)])
    yield queue[:batch_size]
    queue = queue[batch_size:]


def fit(model, images, labels, num_classes, ignore_index=255, steps=600, batch_size=8, lr=0.01,
        weight_decay=5e-4, momentum=0.9, schedule='poly', crop=None, scale_range=(0.5, 2.0),
        seed=0, log_every=50):
  """Trains every variable of `model` on uint8 images [N, H, W, 3] and labels [N, H, W].

  Weight decay is PyTorch's (Detectron2's, mmseg's): wd * w added to the gradient of every
  kernel, not of biases and BN parameters. Returns the mean loss of every `log_every` steps.
  """
  crop = tuple(crop or images.shape[1:3])
  optimizer = keras.optimizers.SGD(learning_rate(schedule, lr, steps), momentum=momentum)
  variables = model.trainable_variables
  decayed = [len(v.shape) > 1 for v in variables]

  @tf.function
  def train_step(x, y, step):
    x, y = augment_batch(x, y, tf.stack([seed, step]), crop, scale_range, ignore_index)
    with tf.GradientTape() as tape:
      loss = probe.masked_cross_entropy(model(x, training=True), y, num_classes, ignore_index)
    grads = tape.gradient(loss, variables)
    grads = [g + weight_decay * v if d else g for g, v, d in zip(grads, variables, decayed)]
    optimizer.apply_gradients(zip(grads, variables))
    return loss

  batches = _batches(len(images), batch_size, np.random.default_rng(seed))
  losses, curve = [], []
  for step in range(steps):
    batch = next(batches)
    losses.append(float(train_step(images[batch], labels[batch], tf.constant(step))))
    if len(losses) == log_every or step == steps - 1:
      curve.append(float(np.mean(losses)))
      logging.info('fine-tuning step %d/%d: loss %.4f', step + 1, steps, curve[-1])
      losses = []
  return curve


def predict(model, images, batch_size=8):
  """Class ids int64 [N, H, W] of uint8 images [N, H, W, 3], each at its full size."""
  forward = tf.function(lambda x: tf.argmax(
      model(augment.normalize(tf.cast(x, tf.float32) / 255.0), training=False), axis=-1))
  return np.concatenate([forward(images[i:i + batch_size]).numpy()
                         for i in range(0, len(images), batch_size)])


def score(model, train_labels, val, num_classes, ignore_index=255, class_names=None,
          batch_size=8):
  """probe.evaluate of the model's predictions on val (uint8 images, uint8 labels)."""
  return probe.evaluate(predict(model, val[0], batch_size), train_labels, val[1], num_classes,
                        ignore_index, class_names)


def run(backbone, architecture, train, val, num_classes, ignore_index=255, use_c4=False,
        head_channels=256, steps=600, batch_size=8, lr=0.01, weight_decay=5e-4, momentum=0.9,
        schedule='poly', crop=None, scale_range=(0.5, 2.0), precision='float32', seed=0,
        class_names=None, log_every=50):
  """Fine-tunes a copy of `backbone` with an FCN head; train and val are (uint8 images, uint8
  labels) at one size. Returns the scores on val with the training details: probe.run's
  record (see probe.evaluate), so probe.table prints both."""
  start = time.time()
  model = build(backbone, architecture, num_classes, use_c4, head_channels, precision, seed)
  curve = fit(model, *train, num_classes, ignore_index, steps, batch_size, lr, weight_decay,
              momentum, schedule, crop, scale_range, seed, log_every)
  result = score(model, train[1], val, num_classes, ignore_index, class_names, batch_size)
  result.update(
      crop=list(crop or train[0].shape[1:3]), scale_range=list(scale_range), use_c4=use_c4,
      head_channels=head_channels, steps=steps, batch_size=batch_size, lr=lr,
      weight_decay=weight_decay, momentum=momentum, schedule=schedule, precision=precision,
      seed=seed, train_loss=curve, final_train_loss=curve[-1], seconds=time.time() - start)
  return result
