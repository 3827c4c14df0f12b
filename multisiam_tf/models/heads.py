"""Projector / predictor heads and the attention predictor (paper §3.1-3.3, METHOD.md 2 and 4).

The 1D heads are BYOL's MLP on [B, C] vectors; the 2D heads are the same MLP on [B, H, W, C]
maps, where a Dense layer is the paper's 1x1 convolution (the same weights, as a matmul over the
channel axis, which oneDNN runs ~30% faster than the Conv2D: docs/BENCHMARKS.md), so both have
the same parameter count (§3.2). Dense layers keep their biases, as BYOL's do, and start as
BYOL's haiku Linear (truncated normal, variance 1 / fan_in); BN uses the backbone's momentum and
epsilon (BYOL's decay 0.9, eps 1e-5), with statistics over B (and H, W on maps).
"""

import keras
import tensorflow as tf

from multisiam_tf.models import resnet


def mlp(hidden_dim, output_dim, name, sync_bn=False):
  """BYOL's MLP: Dense(hidden) -> BN -> ReLU -> Dense(output), on [B, C] or [B, H, W, C]."""
  return keras.Sequential([
      keras.layers.Dense(hidden_dim, kernel_initializer='lecun_normal', name=name + '_linear1'),
      resnet.BatchNorm(momentum=resnet.BN_MOMENTUM, epsilon=resnet.BN_EPSILON,
                       synchronized=sync_bn, name=name + '_bn'),
      keras.layers.ReLU(name=name + '_relu'),
      keras.layers.Dense(output_dim, kernel_initializer='lecun_normal', name=name + '_linear2'),
  ], name=name)


def attention_sum(r, values, power=2):
  """Q_ij = sum_i'j' max(cos(r_ij, r_i'j'), 0)^power * values_i'j' (eq. 8-9), in float32.

  No softmax and no normalisation of the sum, as the paper writes it; a pixel whose r is zero
  has cosine 0 to every pixel.

  Args:
    r: [B, H, W, C] features whose cosine similarities weight the sum (R in eq. 8).
    values: [B, H, W, D] the summed vectors (q(R) in eq. 8).
    power: exponent of the clipped cosine (2 in eq. 9).

  Returns:
    [B, H, W, D] float32.
  """
  r = tf.cast(r, tf.float32)
  values = tf.cast(values, tf.float32)
  shape = tf.shape(values)
  batch, pixels = shape[0], shape[1] * shape[2]
  r = tf.math.l2_normalize(tf.reshape(r, [batch, pixels, -1]), axis=-1)
  cos = tf.linalg.matmul(r, r, transpose_b=True)  # [B, HW, HW]
  # Powers of the clipped zeros are taken on 1 and discarded, so power < 1 has no inf gradient.
  positive = cos > 0.0
  sim = tf.where(positive, tf.pow(tf.where(positive, cos, 1.0), power), 0.0)  # eq. 9
  q = tf.linalg.matmul(sim, tf.reshape(values, [batch, pixels, -1]))  # eq. 8
  return tf.reshape(q, shape)


@keras.saving.register_keras_serializable(package='multisiam_tf')
class AttentionPredictor(keras.layers.Layer):
  """The local predictor q, an mlp on the map, followed by the self-attention sum of eq. 8.

  Q = attention_sum(R, q(R), power), plus q(R) when residual (Table 9); with enabled=False,
  Q = q(R). Q is float32 in every variant, since the loss is computed in float32 (METHOD.md 4).
  """

  def __init__(self, hidden_dim, output_dim, power=2, residual=False, enabled=True,
               sync_bn=False, **kwargs):
    super().__init__(**kwargs)
    self.hidden_dim = hidden_dim
    self.output_dim = output_dim
    self.power = power
    self.residual = residual
    self.enabled = enabled
    self.sync_bn = sync_bn
    self.predictor = mlp(hidden_dim, output_dim, name=self.name + '_q', sync_bn=sync_bn)

  def build(self, input_shape):
    self.predictor.build(input_shape)

  def call(self, r, training=None):
    q = tf.cast(self.predictor(r, training=training), tf.float32)
    if not self.enabled:
      return q
    attended = attention_sum(r, q, self.power)  # eq. 8
    return attended + q if self.residual else attended

  def get_config(self):
    return {**super().get_config(), 'hidden_dim': self.hidden_dim, 'output_dim': self.output_dim,
            'power': self.power, 'residual': self.residual, 'enabled': self.enabled,
            'sync_bn': self.sync_bn}
