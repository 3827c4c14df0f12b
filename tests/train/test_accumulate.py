"""Gradient accumulation: accumulate_steps micro-batches make the update of one doubled batch."""

import keras
import numpy as np
import tensorflow as tf

from multisiam_tf.train import loop


class _Regression(keras.Model):
  """A batch-norm-free model with the protocol the loop drives: forward, apply_update, METRICS."""

  METRICS = ('loss', 'lr')

  def __init__(self):
    super().__init__()
    self.dense = keras.layers.Dense(3, activation='tanh',
                                    kernel_initializer=keras.initializers.RandomNormal(seed=1))
    self.dense.build((None, 5))

  @property
  def online_variables(self):
    return self.dense.trainable_variables

  def forward(self, batch, training):
    del training
    return {'loss': tf.reduce_mean(tf.square(self.dense(batch['x']) - batch['y']))}, None

  def apply_update(self, grads):
    self.optimizer.apply(grads, self.online_variables)
    return {'lr': tf.cast(self.optimizer.learning_rate, tf.float32)}


def _run(data, batch_size, accumulate_steps, updates=2):
  model = _Regression()
  model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
  step = tf.Variable(0, dtype=tf.int64)
  strategy = tf.distribute.get_strategy()
  iterator = iter(tf.data.Dataset.from_tensor_slices(data).batch(batch_size))
  train_loop = loop.make_train_loop(model, strategy, step, accumulate_steps)
  metrics = train_loop(iterator, tf.constant(updates, tf.int64))
  return [v.numpy() for v in model.online_variables], metrics, int(step.numpy())


def test_two_micro_batches_equal_one_doubled_batch():
  rng = np.random.default_rng(0)
  data = {'x': rng.normal(size=(8, 5)).astype(np.float32),
          'y': rng.normal(size=(8, 3)).astype(np.float32)}
  accumulated, acc_metrics, acc_steps = _run(data, batch_size=2, accumulate_steps=2)
  doubled, metrics, steps = _run(data, batch_size=4, accumulate_steps=1)
  one_micro_batch, _, _ = _run(data, batch_size=2, accumulate_steps=1)
  assert acc_steps == steps == 2
  for a, d in zip(accumulated, doubled):
    np.testing.assert_allclose(a, d, rtol=1e-5, atol=1e-6)
  # The comparison can fail: updating on micro-batches alone lands elsewhere.
  assert not np.allclose(one_micro_batch[0], doubled[0], atol=1e-3)
  np.testing.assert_allclose(acc_metrics['loss'], metrics['loss'], rtol=1e-5)
