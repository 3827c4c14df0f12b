"""MLP heads and the attention predictor (eq. 8-9) against numpy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.models import heads


def _np_attention_sum(r, values, power):
  b, h, w, _ = values.shape
  r = r.reshape(b, h * w, -1).astype(np.float64)
  values = values.reshape(b, h * w, -1).astype(np.float64)
  out = np.zeros_like(values)
  for n in range(b):
    for i in range(h * w):
      for j in range(h * w):
        cos = r[n, i] @ r[n, j] / (np.linalg.norm(r[n, i]) * np.linalg.norm(r[n, j]))
        out[n, i] += max(cos, 0.0) ** power * values[n, j]  # eq. 8-9
  return out.reshape(b, h, w, -1)


@pytest.mark.parametrize('power', [1, 2, 0.5])
def test_attention_sum_matches_numpy(power):
  rng = np.random.default_rng(0)
  r = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  values = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
  cos = np.einsum('nic,njc->nij', *[r.reshape(2, 12, 5) / np.linalg.norm(r.reshape(2, 12, 5),
                                                                       axis=-1, keepdims=True)] * 2)
  assert (cos < -0.1).any()  # negative cosines are present and must be clipped
  got = heads.attention_sum(tf.constant(r), tf.constant(values), power)
  assert got.dtype == tf.float32 and got.shape == (2, 3, 4, 6)
  np.testing.assert_allclose(got, _np_attention_sum(r, values, power), rtol=1e-5, atol=1e-5)


def test_attention_sum_low_precision_inputs_compute_in_float32():
  rng = np.random.default_rng(1)
  r = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
  values = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
  want = heads.attention_sum(r, values)
  got = heads.attention_sum(tf.cast(r, tf.bfloat16), tf.cast(values, tf.bfloat16))
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got, want, rtol=0.03, atol=0.03)


def test_attention_sum_in_graph_with_unknown_shapes_and_finite_gradients():
  rng = np.random.default_rng(2)
  r = tf.constant(rng.normal(size=(2, 3, 3, 4)).astype(np.float32))
  values = tf.constant(rng.normal(size=(2, 3, 3, 2)).astype(np.float32))
  spec = tf.TensorSpec([None, None, None, None], tf.float32)

  @tf.function(input_signature=[spec, spec])
  def grad(r, values):
    with tf.GradientTape() as tape:
      tape.watch(r)
      loss = tf.reduce_sum(heads.attention_sum(r, values, power=0.5))
    return tape.gradient(loss, r), loss

  g, loss = grad(r, values)
  np.testing.assert_allclose(loss, _np_attention_sum(r.numpy(), values.numpy(), 0.5).sum(),
                             rtol=1e-5)
  assert np.all(np.isfinite(g))


def _assign(model, rng):
  for variable in model.weights:
    low = 0.5 if 'variance' in variable.name or 'gamma' in variable.name else -0.5
    variable.assign(rng.uniform(low, low + 1.0, variable.shape).astype(np.float32))


def test_mlp_shapes_and_parameter_count_on_vectors_and_maps():
  projector = heads.mlp(32, 8, name='projector')
  assert projector(np.zeros((3, 16), np.float32)).shape == (3, 8)
  local = heads.mlp(32, 8, name='local_projector')
  assert local(np.zeros((3, 5, 7, 16), np.float32)).shape == (3, 5, 7, 8)
  # 16*32 + 32 (dense), 4*32 (BN), 32*8 + 8 (dense): a 1x1 convolution's count.
  assert projector.count_params() == local.count_params() == 16 * 32 + 32 + 4 * 32 + 32 * 8 + 8
  assert [w.name for w in projector.weights] == ['kernel', 'bias', 'gamma', 'beta', 'moving_mean',
                                                 'moving_variance', 'kernel', 'bias']


def _np_conv_mlp(x, weights, training=False):
  """The 2D head in numpy: 1x1 convolutions as per-pixel matmuls, BN over B, H, W in training."""
  w1, b1, gamma, beta, mean, var, w2, b2 = [w.numpy().astype(np.float64) for w in weights]
  h = x @ w1 + b1
  if training:
    mean, var = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
  h = np.maximum((h - mean) / np.sqrt(var + 1e-5) * gamma + beta, 0.0)
  return h @ w2 + b2


@pytest.mark.parametrize('training', [True, False])
def test_mlp_on_a_map_is_a_1x1_convolution_per_pixel(training):
  rng = np.random.default_rng()
  x = rng.normal(size=(3, 4, 5, 16)).astype(np.float32)
  head = heads.mlp(32, 8, name='g')
  head.build(x.shape)
  _assign(head, rng)
  np.testing.assert_allclose(head(x, training=training),
                             _np_conv_mlp(x.astype(np.float64), head.weights, training),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('enabled,residual', [(True, False), (True, True), (False, False)])
def test_attention_predictor_matches_numpy(enabled, residual):
  rng = np.random.default_rng(4)
  r = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
  layer = heads.AttentionPredictor(16, 5, power=2, residual=residual, enabled=enabled)
  layer.build(r.shape)
  _assign(layer, rng)
  q = _np_conv_mlp(r.astype(np.float64), layer.predictor.weights)
  want = q if not enabled else _np_attention_sum(r, q, 2) + (q if residual else 0.0)
  got = layer(r, training=False)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_attention_predictor_mixed_precision_and_serialisation():
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    layer = heads.AttentionPredictor(16, 5, residual=True, name='local_predictor')
    inputs = keras.Input((3, 3, 6))
    model = keras.Model(inputs, layer(inputs))
    out = model(np.ones((2, 3, 3, 6), np.float32), training=True)
    assert out.dtype == tf.float32 and out.shape == (2, 3, 3, 5)
    assert layer.predictor.layers[0].compute_dtype == 'bfloat16'
  finally:
    keras.mixed_precision.set_global_policy('float32')
  restored = heads.AttentionPredictor.from_config(layer.get_config())
  assert (restored.residual, restored.enabled, restored.power, restored.output_dim) == (
      True, True, 2, 5)
