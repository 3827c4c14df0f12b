"""The target side: momentum schedule, EMA update and key queue against numpy."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.models import target


@pytest.mark.parametrize('step,want', [(0, 0.996), (500, 0.998), (1000, 1.0), (1500, 1.0),
                                       (250, 1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)])
def test_target_momentum(step, want):
  np.testing.assert_allclose(float(target.target_momentum(step, 1000, 0.996)), want, rtol=1e-6)


def _variable(array):
  return keras.Variable(array, trainable=False)


def test_ema_update_mixes_each_pair():
  rng = np.random.default_rng(0)
  xi, theta = (rng.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(2))
  pairs = [(_variable(xi[i]), _variable(theta[i])) for i in range(2)]
  target.ema_update(pairs, tf.constant(0.9))
  for (t, o), x, th in zip(pairs, xi, theta):
    np.testing.assert_allclose(t.numpy(), 0.9 * x + 0.1 * th, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(o.numpy(), th)  # the online weights stay


def test_push_puts_normalised_keys_in_front_and_drops_the_oldest():
  rng = np.random.default_rng(1)
  initial = target.initial_queue(6, 4, [0, 1]).numpy()
  np.testing.assert_allclose(np.linalg.norm(initial, axis=1), 1.0, rtol=1e-6)
  queue = _variable(initial)
  keys = rng.normal(size=(2, 4)).astype(np.float32)
  target.push(queue, tf.constant(keys))
  want = np.concatenate([keys / np.linalg.norm(keys, axis=1, keepdims=True), initial[:4]])
  np.testing.assert_allclose(queue.numpy(), want, rtol=1e-6)
