"""Losses (eqs. 1, 10, 11, 15, 20-21) against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.models import losses


def _np_cos(a, b):
  return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _rng_arrays(seed, *shapes):
  rng = np.random.default_rng(seed)
  return [rng.normal(size=s).astype(np.float32) for s in shapes]


def test_negative_cosine_averages_batch_and_pixels():
  q, z = _rng_arrays(0, (8, 16), (8, 16))
  np.testing.assert_allclose(losses.negative_cosine(q, z).numpy(), -_np_cos(q, z).mean(), atol=1e-6)
  np.testing.assert_allclose(losses.negative_cosine(q, 3 * q).numpy(), -1.0, atol=1e-6)
  q, t = _rng_arrays(1, (3, 4, 5, 6), (3, 4, 5, 6))
  np.testing.assert_allclose(losses.negative_cosine(q, t).numpy(), -_np_cos(q, t).mean(), atol=1e-6)


def test_dense_cluster_loss():
  q, x = _rng_arrays(2, (2, 3, 3, 4), (2, 3, 3, 4))
  assignment = np.random.default_rng(2).integers(0, 2, size=(2, 3, 3)).astype(np.int32)
  q_flat, x_flat, a_flat = q.reshape(2, 9, 4), x.reshape(2, 9, 4), assignment.reshape(2, 9)
  want = np.mean([
      np.mean([_np_cos(q_flat[b, n], x_flat[b, m])
               for m in range(9) if a_flat[b, m] == a_flat[b, n]])
      for b in range(2) for n in range(9)])
  np.testing.assert_allclose(losses.dense_cluster_loss(q, x, assignment).numpy(), -want, atol=1e-6)


def test_moco_pixel_loss_is_infonce():
  g, k_pos, queue = _rng_arrays(3, (2, 3, 4, 8), (2, 3, 4, 8), (10, 8))
  tau = 0.2
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
  positive = (unit(g) * unit(k_pos)).sum(-1) / tau
  negatives = unit(g) @ unit(queue).T / tau
  fraction = np.exp(positive) / (np.exp(positive) + np.exp(negatives).sum(-1))  # eq. 21
  np.testing.assert_allclose(losses.moco_pixel_loss(g, k_pos, queue, tau).numpy(),
                             np.mean(-np.log(fraction)), rtol=1e-5)


def test_total_loss():
  np.testing.assert_allclose(losses.total_loss(-0.8, -0.4, 0.5).numpy(), -0.6, rtol=1e-6)
  np.testing.assert_allclose(losses.total_loss(-0.8, -0.4, 0.25).numpy(), -0.5, rtol=1e-6)


@pytest.mark.parametrize('loss_fn,shapes', [
    (losses.negative_cosine, [(4, 8), (4, 8)]),
    (losses.negative_cosine, [(2, 3, 3, 8), (2, 3, 3, 8)]),
    (lambda q, t: losses.moco_pixel_loss(q, t, tf.ones([5, 8]), 0.2),
     [(2, 3, 3, 8), (2, 3, 3, 8)]),
])
def test_float32_from_bfloat16_and_no_gradient_into_targets(loss_fn, shapes):
  q, t = (tf.constant(a, tf.bfloat16) for a in _rng_arrays(4, *shapes))
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([q, t])
    loss = loss_fn(q, t)
  assert loss.dtype == tf.float32 and loss.shape == ()
  assert tape.gradient(loss, t) is None
  assert tape.gradient(loss, q) is not None
