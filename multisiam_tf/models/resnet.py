"""ResNet v1.5 backbone, laid out as torchvision and TF Model Garden lay it out (METHOD.md 2).

Layer naming rule (1:1 and order-preserving with torchvision's `state_dict`): a Keras layer is
named by its torchvision module path with '.' replaced by '_', except that a block's projection
shortcut `layerS.B.downsample.0` / `.1` is `layerS_B_downsample_conv` / `layerS_B_downsample_bn`:

  conv1, bn1, layer1_0_conv1, layer1_0_bn1, ..., layer1_0_downsample_conv, layer1_0_downsample_bn

Variables map as Conv2D `kernel` [kh, kw, in, out] -> `weight` [out, in, kh, kw] (transpose
3, 2, 0, 1); BatchNorm `gamma`, `beta`, `moving_mean`, `moving_variance` -> `weight`, `bias`,
`running_mean`, `running_var`. `torchvision_names(model)` lists them in torchvision's order.
Layers without variables (padding, ReLU, max-pool, add) carry names outside this rule.

Padding is torchvision's: strided convolutions and the max-pool pad k // 2 on every side, where
Keras' 'same' would pad only bottom/right on even inputs (and shift every window by one pixel).
"""

import re

import keras
import tensorflow as tf

BN_MOMENTUM = 0.9  # torchvision's momentum=0.1 in Keras' convention
BN_EPSILON = 1e-5  # torchvision

# depth -> (block kind, blocks per stage); He et al. 2016, Table 1.
_LAYOUT = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
}
_EXPANSION = {'basic': 1, 'bottleneck': 4}
_FUSED_DTYPES = (tf.float16, tf.bfloat16, tf.float32)


@keras.saving.register_keras_serializable(package='multisiam_tf')
class BatchNorm(keras.layers.BatchNormalization):
  """Keras' BatchNormalization computed by TF's fused kernel on 4-D channels-last inputs.

  Variables, config and the moving-average rule are the parent's, so checkpoints and serialised
  models are interchangeable with it; only the arithmetic runs in one `FusedBatchNormV3` kernel
  instead of Keras 3's chain of unfused ops (DESIGN.md: those halved CPU training speed).
  float16/bfloat16 inputs go to the kernel as they are (it accumulates in float32 with float32
  statistics, also on CPU). Cross-replica statistics (`synchronized=True`), masks, batch
  renormalisation, other ranks or a non-last axis use the parent's path; its cross-replica
  moments take one all-reduce per layer here (`_moments`).
  """

  def call(self, inputs, training=None, mask=None):
    if (self.synchronized or self.renorm or mask is not None or len(inputs.shape) != 4
        or self.axis not in (-1, 3) or inputs.dtype not in _FUSED_DTYPES):
      return super().call(inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    scale = self.gamma if self.scale else tf.ones([channels])
    offset = self.beta if self.center else tf.zeros([channels])
    if training and self.trainable:
      outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
          x=inputs, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
          epsilon=self.epsilon, data_format='NHWC', is_training=True)
      # The kernel returns Bessel-corrected variance; Keras averages the biased one.
      n = tf.cast(tf.reduce_prod(tf.shape(inputs, out_type=tf.int64)[:-1]), tf.float32)
      variance *= (n - 1.0) / n
      self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
      self.moving_variance.assign(
          self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
    else:
      outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
          x=inputs, scale=scale, offset=offset, mean=self.moving_mean,
          variance=self.moving_variance, epsilon=self.epsilon, data_format='NHWC',
          is_training=False)
    return tf.cast(outputs, self.compute_dtype)

  def _moments(self, inputs, mask):
    """Batch mean and variance over all replicas from one all-reduce of [sum, sum of squares,
    count], where Keras issues three (and builds a ones tensor the size of `inputs` to count)."""
    context = tf.distribute.get_replica_context()
    if not self.synchronized or mask is not None or context is None:
      return super()._moments(inputs, mask)
    axes = self._reduction_axes
    count = tf.reduce_prod(tf.gather(tf.shape(inputs), axes))
    local = tf.concat([tf.reduce_sum(inputs, axes), tf.reduce_sum(tf.square(inputs), axes),
                       tf.cast(count, inputs.dtype)[None]], 0)
    total, squares, count = tf.split(context.all_reduce(tf.distribute.ReduceOp.SUM, local),
                                     [inputs.shape[self.axis]] * 2 + [1])
    mean = tf.math.divide_no_nan(total, count)
    variance = tf.maximum(tf.math.divide_no_nan(squares, count) - tf.square(mean), 0.0)
    return mean, variance


def _channels(base, width):
  return max(1, int(base * width))  # Model Garden's int(base * multiplier)


def out_channels(depth, width=1.0):
  """Channels of C5 (2048 for ResNet-50/101, 512 for ResNet-18/34 at width 1)."""
  kind, _ = _LAYOUT[depth]
  return _channels(512, width) * _EXPANSION[kind]


def _he_fan_out():
  # torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu'), untruncated.
  return keras.initializers.VarianceScaling(2.0, 'fan_out', 'untruncated_normal')


def _conv(x, filters, kernel_size, strides, dilation, name):
  """Bias-free convolution with torchvision's symmetric padding (kernel_size // 2 * dilation)."""
  if strides > 1 and kernel_size > 1:
    x = keras.layers.ZeroPadding2D(kernel_size // 2, name=name + '_pad')(x)
    padding = 'valid'
  else:
    padding = 'same'  # symmetric for odd kernels at stride 1, and no padding for 1x1
  return keras.layers.Conv2D(
      filters, kernel_size, strides, padding, dilation_rate=dilation, use_bias=False,
      kernel_initializer=_he_fan_out(), name=name)(x)


def _bn(x, name, sync_bn, zero_gamma=False):
  return BatchNorm(
      momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=sync_bn,
      gamma_initializer='zeros' if zero_gamma else 'ones', name=name)(x)


def _basic_block(x, filters, strides, dilation, name, sync_bn, zero_init_residual):
  """3x3 (stride) -> 3x3, identity or projection shortcut (torchvision BasicBlock)."""
  y = _conv(x, filters, 3, strides, dilation, name + '_conv1')
  y = keras.layers.ReLU(name=name + '_relu1')(_bn(y, name + '_bn1', sync_bn))
  y = _conv(y, filters, 3, 1, dilation, name + '_conv2')
  y = _bn(y, name + '_bn2', sync_bn, zero_init_residual)
  return _merge(x, y, strides, name, sync_bn)


def _bottleneck(x, filters, strides, dilation, name, sync_bn, zero_init_residual):
  """1x1 -> 3x3 (stride: v1.5) -> 1x1 x4, identity or projection shortcut (torchvision)."""
  y = _conv(x, filters, 1, 1, 1, name + '_conv1')
  y = keras.layers.ReLU(name=name + '_relu1')(_bn(y, name + '_bn1', sync_bn))
  y = _conv(y, filters, 3, strides, dilation, name + '_conv2')
  y = keras.layers.ReLU(name=name + '_relu2')(_bn(y, name + '_bn2', sync_bn))
  y = _conv(y, filters * 4, 1, 1, 1, name + '_conv3')
  y = _bn(y, name + '_bn3', sync_bn, zero_init_residual)
  return _merge(x, y, strides, name, sync_bn)


def _merge(x, y, strides, name, sync_bn):
  """Adds the shortcut, a 1x1 conv + BN projection when the shape changes, then ReLU."""
  if strides != 1 or x.shape[-1] != y.shape[-1]:
    x = _conv(x, y.shape[-1], 1, strides, 1, name + '_downsample_conv')
    x = _bn(x, name + '_downsample_bn', sync_bn)
  y = keras.layers.Add(name=name + '_add')([y, x])
  return keras.layers.ReLU(name=name + '_relu')(y)


def ResNet(depth, width=1.0, output_stride=32, sync_bn=False, zero_init_residual=False,
           name=None):
  """ResNet v1.5 backbone as a functional keras.Model: image [B, H, W, 3] -> endpoints.

  Args:
    depth: 18, 34 (BasicBlock) or 50, 101 (Bottleneck).
    width: multiplier of every stage's channels (stem 64 * width).
    output_stride: 32, or 16 to run the last stage at stride 1 with dilation 2 in all its 3x3
      convolutions (a larger C5 map for small inputs).
    sync_bn: cross-replica BatchNorm statistics (Keras' synchronized path).
    zero_init_residual: gamma 0 in each block's last BN (Goyal et al. 2017); off as torchvision.
    name: model name, default f'resnet{depth}'.

  Returns:
    keras.Model whose output is {'c2', 'c3', 'c4', 'c5'}: the outputs of layer1..layer4 at
    strides 4, 8, 16 and 32 (16 with output_stride=16), in the compute dtype of the policy.
  """
  if depth not in _LAYOUT:
    raise ValueError(f'ResNet depth must be one of {sorted(_LAYOUT)}, got {depth}')
  if output_stride not in (16, 32):
    raise ValueError(f'output_stride must be 16 or 32, got {output_stride}')
  kind, blocks = _LAYOUT[depth]
  block_fn = _basic_block if kind == 'basic' else _bottleneck
  image = keras.Input((None, None, 3), name='image')
  x = _conv(image, _channels(64, width), 7, 2, 1, 'conv1')
  x = keras.layers.ReLU(name='relu')(_bn(x, 'bn1', sync_bn))
  # Zero padding equals torchvision's -inf padding here because the input is post-ReLU.
  x = keras.layers.ZeroPadding2D(1, name='maxpool_pad')(x)
  x = keras.layers.MaxPool2D(3, 2, name='maxpool')(x)
  endpoints = {}
  for stage, num_blocks in enumerate(blocks, start=1):
    dilated = stage == 4 and output_stride == 16
    stage_stride = 1 if stage == 1 or dilated else 2
    for block in range(num_blocks):
      x = block_fn(x, _channels(64 * 2 ** (stage - 1), width),
                   strides=stage_stride if block == 0 else 1, dilation=2 if dilated else 1,
                   name=f'layer{stage}_{block}', sync_bn=sync_bn,
                   zero_init_residual=zero_init_residual)
    endpoints[f'c{stage + 1}'] = x
  return keras.Model(image, endpoints, name=name or f'resnet{depth}')


_VARIABLE_NAMES = {'kernel': 'weight', 'gamma': 'weight', 'beta': 'bias',
                   'moving_mean': 'running_mean', 'moving_variance': 'running_var'}
_PART_ORDER = ('conv1', 'bn1', 'conv2', 'bn2', 'conv3', 'bn3', 'downsample_conv', 'downsample_bn')
_BLOCK_LAYER = re.compile(r'layer(\d+)_(\d+)_(\w+)$')


def torchvision_name(layer_name):
  """Keras layer name -> torchvision module: 'layer1_0_downsample_bn' -> 'layer1.0.downsample.1'."""
  if layer_name in ('conv1', 'bn1'):
    return layer_name
  stage, block, part = _BLOCK_LAYER.match(layer_name).groups()
  part = {'downsample_conv': 'downsample.0', 'downsample_bn': 'downsample.1'}.get(part, part)
  return f'layer{stage}.{block}.{part}'


def _torchvision_order(layer_name):
  if layer_name in ('conv1', 'bn1'):
    return (0, 0, layer_name == 'bn1')
  stage, block, part = _BLOCK_LAYER.match(layer_name).groups()
  return (int(stage), int(block), _PART_ORDER.index(part))


def torchvision_names(model):
  """[(torchvision state_dict key, Keras variable)] for every variable, in torchvision's order.

  Kernels stay in Keras' [kh, kw, in, out] layout; the caller transposes them (3, 2, 0, 1).
  BN's `num_batches_tracked` has no Keras counterpart and is not listed.
  """
  layers = sorted((layer for layer in model.layers if layer.weights),
                  key=lambda layer: _torchvision_order(layer.name))
  names = []
  for layer in layers:
    for variable in layer.weights:
      names.append((f'{torchvision_name(layer.name)}.{_VARIABLE_NAMES[variable.name]}', variable))
  return names


def load_torchvision_weights(model, state):
  """Fills `model` from a torchvision-layout state dict {name: numpy array} (e.g. a PyTorch
  ResNet's `state_dict()` as numpy): kernels OIHW -> HWIO, every other value as it is.

  Keys without a Keras counterpart (`num_batches_tracked`, a classifier `fc.*`) are left out; a
  missing key or a shape that differs raises ValueError naming it.
  """
  for name, variable in torchvision_names(model):
    if name not in state:
      raise ValueError(f'state dict has no {name!r} for {model.name}')
    value = state[name]
    value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
    if tuple(value.shape) != tuple(variable.shape):
      raise ValueError(f'{name}: state dict holds {tuple(value.shape)} (as Keras), '
                       f'{model.name} needs {tuple(variable.shape)}')
    variable.assign(value)
