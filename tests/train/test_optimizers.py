"""optim.name's optimizers against numpy: SGD with coupled decay, AdamW; 1-D variables undecayed."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.train import lars
from multisiam_tf.train import optimizers

LR, MOMENTUM, WD = 0.05, 0.9, 0.1  # base_lr = LR at batch 256; the warmup is 0, cosine over 100


def _config(name):
  return config_lib.override(config_lib.defaults(), {
      'optim.name': name, 'optim.base_lr': LR, 'optim.momentum': MOMENTUM,
      'optim.weight_decay': WD, 'optim.warmup_steps': 0, 'train.steps': 100,
      'train.batch_size': 256})


def _lrs(steps):
  return [LR * 0.5 * (1 + np.cos(np.pi * k / 100)) for k in range(steps)]


def _np_sgd(weights, grads, lrs):
  velocities = [np.zeros_like(w) for w in weights]
  for step_grads, lr in zip(grads, lrs):
    for n, g in enumerate(step_grads):
      g = g + WD * weights[n] if weights[n].ndim > 1 else g
      velocities[n] = MOMENTUM * velocities[n] + lr * g
      weights[n] = weights[n] - velocities[n]
  return weights


def _np_adamw(weights, grads, lrs, b1=0.9, b2=0.999, eps=1e-7):
  m = [np.zeros_like(w) for w in weights]
  v = [np.zeros_like(w) for w in weights]
  for k, (step_grads, lr) in enumerate(zip(grads, lrs), start=1):
    for n, g in enumerate(step_grads):
      if weights[n].ndim > 1:
        weights[n] = weights[n] - lr * WD * weights[n]
      m[n] = b1 * m[n] + (1 - b1) * g
      v[n] = b2 * v[n] + (1 - b2) * g * g
      alpha = lr * np.sqrt(1 - b2**k) / (1 - b1**k)
      weights[n] = weights[n] - alpha * m[n] / (np.sqrt(v[n]) + eps)
  return weights


@pytest.mark.parametrize('name, reference', [('sgd', _np_sgd), ('adamw', _np_adamw)])
def test_optimizer_matches_numpy(name, reference):
  rng = np.random.default_rng()
  weights = [rng.normal(size=s) for s in [(4, 3), (3,), (2, 2, 5)]]
  grads = [[rng.normal(size=w.shape) for w in weights] for _ in range(4)]
  variables = [keras.Variable(w.astype(np.float32)) for w in weights]
  optimizer = optimizers.make(_config(name), variables)
  for step_grads in grads:
    optimizer.apply([tf.constant(g, tf.float32) for g in step_grads], variables)
  want = reference([w.copy() for w in weights], grads, _lrs(len(grads)))
  for got, w in zip(variables, want):
    # float32 against float64 on O(1) weights: a weight that lands near 0 keeps ~1e-6 of rounding.
    np.testing.assert_allclose(got.numpy(), w, rtol=1e-5, atol=1e-5)


def test_lars_is_the_default():
  optimizer = optimizers.make(_config('lars'), [])
  assert isinstance(optimizer, lars.LARS) and optimizer.layer_adaptation_exclusions is None
