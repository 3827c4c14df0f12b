"""The learning-rate schedule: linear warmup, then cosine (paper §4.1; METHOD.md §5).

Pure functions of the step, as DeepMind BYOL's `utils/schedules.py`; they accept python numbers
or tensors and return float32 tensors.
"""

import math

import keras
import tensorflow as tf


def _cosine_decay(step, max_steps, initial_value):
  """initial_value * (cos(pi k / K) + 1) / 2 with k clipped to [0, K]; K = 0 gives 0."""
  step = tf.cast(step, tf.float32)
  max_steps = tf.cast(max_steps, tf.float32)
  fraction = tf.math.divide_no_nan(tf.clip_by_value(step, 0.0, max_steps), max_steps)
  value = initial_value * 0.5 * (1.0 + tf.cos(math.pi * fraction))
  return tf.where(max_steps > 0, value, tf.zeros_like(value))


def learning_rate(step, base_lr, batch_size, warmup_steps, total_steps):
  """Linear warmup from 0 to lr = base_lr * batch / 256, then cosine to 0 at total_steps."""
  step = tf.cast(step, tf.float32)
  peak = base_lr * batch_size / 256
  warmup = peak * tf.math.divide_no_nan(step, tf.cast(warmup_steps, tf.float32))
  decay = _cosine_decay(step - warmup_steps, total_steps - warmup_steps, peak)
  return tf.where(step < warmup_steps, warmup, decay)


@keras.saving.register_keras_serializable(package='multisiam_tf')
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
  """`learning_rate` as a Keras schedule; the optimizer calls it with its step counter."""

  def __init__(self, base_lr, batch_size, warmup_steps, total_steps):
    self.base_lr = base_lr
    self.batch_size = batch_size
    self.warmup_steps = warmup_steps
    self.total_steps = total_steps

  def __call__(self, step):
    return learning_rate(step, self.base_lr, self.batch_size, self.warmup_steps,
                         self.total_steps)

  def get_config(self):
    return {
        'base_lr': self.base_lr,
        'batch_size': self.batch_size,
        'warmup_steps': self.warmup_steps,
        'total_steps': self.total_steps,
    }
