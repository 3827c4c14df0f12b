"""Projector / predictor heads and the attention predictor (paper §3.1-3.3, METHOD.md 2 and 4).

The 1D heads are BYOL's MLP; the 2D heads are the same layers as 1x1 convolutions on [B, H, W, C]
maps, so both have the same parameter count (§3.2). Dense layers keep their biases, as BYOL's do,
and start as BYOL's haiku Linear (truncated normal, variance 1 / fan_in); BN uses the backbone's
momentum and epsilon (BYOL's decay 0.9, eps 1e-5).
"""

import keras
import tensorflow as tf

from multisiam_tf.models import resnet


def _head(layer, hidden_dim, output_dim, name, sync_bn):
  """layer(hidden) -> BN -> ReLU -> layer(output), with layer a Dense or a 1x1 Conv2D factory."""
  return keras.Sequential([
      layer(hidden_dim, name=name + '_linear1'),
      resnet.BatchNorm(momentum=resnet.BN_MOMENTUM, epsilon=resnet.BN_EPSILON,
                       synchronized=sync_bn, name=name + '_bn'),
      keras.layers.ReLU(name=name + '_relu'),
      layer(output_dim, name=name + '_linear2'),
  ], name=name)


def _dense(units, name):
  return keras.layers.Dense(units, kernel_initializer='lecun_normal', name=name)


def _conv1x1(units, name):
  return keras.layers.Conv2D(units, 1, kernel_initializer='lecun_normal', name=name)


def mlp(hidden_dim, output_dim, name, sync_bn=False):
  """BYOL's MLP on [B, C] vectors: Dense(hidden) -> BN -> ReLU -> Dense(output)."""
  return _head(_dense, hidden_dim, output_dim, name, sync_bn)


def conv_mlp(hidden_dim, output_dim, name, sync_bn=False):
  """`mlp` as 1x1 convolutions on [B, H, W, C] maps (§3.2), BN statistics over B, H and W."""
  return _head(_conv1x1, hidden_dim, output_dim, name, sync_bn)


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
  """The local predictor q as a conv_mlp, followed by the self-attention sum of eq. 8.

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
    self.predictor = conv_mlp(hidden_dim, output_dim, name=self.name + '_q', sync_bn=sync_bn)

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
