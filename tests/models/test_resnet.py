"""ResNet v1.5 and the fused BatchNorm against Keras' BN and a plain numpy torchvision forward."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.models import resnet


@pytest.fixture
def policy():
  """Sets a global dtype policy for one test and restores float32 after it."""
  yield keras.mixed_precision.set_global_policy
  keras.mixed_precision.set_global_policy('float32')


@pytest.fixture(scope='module')
def resnet50():
  return {32: resnet.ResNet(50), 16: resnet.ResNet(50, output_stride=16)}


def _copy_bn(src, dst):
  for a, b in zip(src.weights, dst.weights):
    b.assign(a)


def _random_bn(rng, channels, **kwargs):
  """A fused BatchNorm and Keras' BN with the same random gamma, beta and moving statistics."""
  ours = resnet.BatchNorm(momentum=0.9, epsilon=1e-5, **kwargs)
  theirs = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
  for layer in (ours, theirs):
    layer.build((None, 5, 7, channels))
  for variable, low in zip(ours.weights, (0.5, -0.5, -0.5, 0.5)):
    variable.assign(rng.uniform(low, low + 1.0, channels).astype(np.float32))
  _copy_bn(ours, theirs)
  return ours, theirs


@pytest.mark.parametrize('training', [True, False])
def test_batchnorm_matches_keras(training):
  rng = np.random.default_rng(0)
  ours, theirs = _random_bn(rng, 6)
  x = tf.constant(rng.normal(2.0, 3.0, (3, 5, 7, 6)).astype(np.float32))
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    y_ours = ours(x, training=training)
    y_theirs = theirs(x, training=training)
    weights = tf.constant(rng.normal(size=(3, 5, 7, 6)).astype(np.float32))
    loss_ours = tf.reduce_sum(y_ours * weights)
    loss_theirs = tf.reduce_sum(y_theirs * weights)
  np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
  for a, b in zip(ours.weights, theirs.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
  grads_ours = tape.gradient(loss_ours, [x] + ours.trainable_weights)
  grads_theirs = tape.gradient(loss_theirs, [x] + theirs.trainable_weights)
  for a, b in zip(grads_ours, grads_theirs):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_batchnorm_moving_statistics_follow_momentum():
  rng = np.random.default_rng(1)
  ours, _ = _random_bn(rng, 4)
  mean0, var0 = ours.moving_mean.numpy(), ours.moving_variance.numpy()
  x = rng.normal(1.0, 2.0, (2, 3, 3, 4)).astype(np.float32)
  ours(x, training=True)
  flat = x.reshape(-1, 4)
  np.testing.assert_allclose(ours.moving_mean, 0.9 * mean0 + 0.1 * flat.mean(0), rtol=1e-5)
  # Biased batch variance, as Keras (not the kernel's Bessel-corrected one).
  np.testing.assert_allclose(ours.moving_variance, 0.9 * var0 + 0.1 * flat.var(0), rtol=1e-5)


def test_batchnorm_frozen_layer_uses_moving_statistics():
  rng = np.random.default_rng(2)
  ours, theirs = _random_bn(rng, 4)
  ours.trainable = theirs.trainable = False
  x = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
  np.testing.assert_allclose(ours(x, training=True), theirs(x, training=False), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean)


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_batchnorm_low_precision(policy, dtype):
  policy('mixed_' + dtype)
  rng = np.random.default_rng(3)
  ours, theirs = _random_bn(rng, 8)
  x = rng.normal(size=(4, 5, 7, 8)).astype(np.float32)
  for training in (True, False):
    y_ours, y_theirs = ours(x, training=training), theirs(x, training=training)
    assert y_ours.dtype == dtype
    np.testing.assert_allclose(tf.cast(y_ours, tf.float32), tf.cast(y_theirs, tf.float32),
                               rtol=2e-2, atol=2e-2)
  for a, b in zip(ours.weights, theirs.weights):
    assert a.dtype == 'float32'
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def _op_types(layer, x, training):
  graph = tf.function(lambda t: layer(t, training=training)).get_concrete_function(x).graph
  return {op.type for op in graph.get_operations()}


def test_batchnorm_uses_fused_kernel_except_when_synchronized():
  x = tf.TensorSpec((2, 4, 4, 3), tf.float32)
  for training in (True, False):
    assert 'FusedBatchNormV3' in _op_types(resnet.BatchNorm(), x, training)
    assert 'FusedBatchNormV3' not in _op_types(resnet.BatchNorm(synchronized=True), x, training)
  rng = np.random.default_rng(4)
  ours, theirs = _random_bn(rng, 3, synchronized=True)
  x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), rtol=1e-5,
                             atol=1e-5)


_SYNC_BN_TWO_REPLICAS = """
import keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from multisiam_tf.models import resnet

rng = np.random.default_rng(7)
x = rng.normal(1.0, 2.0, (4, 5, 3, 6)).astype(np.float32)  # two replicas of 2 images
dy = rng.normal(size=x.shape).astype(np.float32)
gamma, beta = rng.normal(size=6).astype(np.float32), rng.normal(size=6).astype(np.float32)
strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
with strategy.scope():
  layer = resnet.BatchNorm(momentum=0.9, epsilon=1e-5, synchronized=True)
  layer.build(x.shape)
  layer.gamma.assign(gamma)
  layer.beta.assign(beta)

@tf.function
def step(xs, dys):
  def replica(x, dy):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=True)
    return y, tape.gradient(y, x, output_gradients=dy)
  return strategy.run(replica, (xs, dys))

def halves(a):
  return strategy.experimental_distribute_values_from_function(
      lambda ctx: tf.constant(a[2 * ctx.replica_id_in_sync_group:][:2]))

y, dx = step(halves(x), halves(dy))
y = np.concatenate([t.numpy() for t in y.values])
dx = np.concatenate([t.numpy() for t in dx.values])
# numpy batch norm over the global batch of 4, forward and backward
n = x.size // 6
mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
xhat = (x - mean) / np.sqrt(var + 1e-5)
np.testing.assert_allclose(y, xhat * gamma + beta, rtol=1e-4, atol=1e-4)
g = dy * gamma
want_dx = (n * g - g.sum((0, 1, 2)) - xhat * (g * xhat).sum((0, 1, 2))) / (n * np.sqrt(var + 1e-5))
np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-4)
for v in layer.moving_mean.value.values:
  np.testing.assert_allclose(v.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
for v in layer.moving_variance.value.values:
  np.testing.assert_allclose(v.numpy(), 0.9 + 0.1 * var, rtol=1e-5, atol=1e-6)

# one all-reduce per replica and forward call, where Keras' synchronized BN makes three
all_reduce = tf.distribute.ReplicaContext.all_reduce
calls = []
def counted(*args, **kwargs):
  calls.append(1)
  return all_reduce(*args, **kwargs)
tf.distribute.ReplicaContext.all_reduce = counted
def forward_all_reduces(bn):
  calls.clear()
  tf.function(lambda xs: strategy.run(lambda x: bn(x, training=True), (xs,)))(halves(x))
  return len(calls)
with strategy.scope():
  keras_layer = keras.layers.BatchNormalization(synchronized=True)
  keras_layer.build(x.shape)
ours, theirs = forward_all_reduces(layer), forward_all_reduces(keras_layer)
assert (ours, theirs) == (2, 6), (ours, theirs)
print('sync batch norm equals numpy over the global batch')
"""


def test_synchronized_batchnorm_over_two_replicas_is_numpy_batchnorm_of_the_global_batch():
  # Logical devices must be set before TensorFlow initialises them: a fresh interpreter.
  result = subprocess.run([sys.executable, '-c', _SYNC_BN_TWO_REPLICAS], capture_output=True,
                          text=True, cwd=pathlib.Path(__file__).parents[2], timeout=300,
                          check=False)
  assert 'equals numpy over the global batch' in result.stdout, result.stderr[-3000:]


def test_batchnorm_keeps_keras_config_and_variables():
  ours = resnet.BatchNorm(momentum=0.9, epsilon=1e-5, name='bn')
  theirs = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name='bn')
  assert ours.get_config() == theirs.get_config()
  ours.build((None, 3, 3, 2))
  theirs.build((None, 3, 3, 2))
  assert [v.path for v in ours.weights] == [v.path for v in theirs.weights]
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ours))
  assert type(restored) is resnet.BatchNorm and restored.epsilon == 1e-5


def _count(shapes):
  return sum(int(np.prod(s)) for s in shapes)


def test_resnet50_parameter_count(resnet50):
  model = resnet50[32]
  assert _count(w.shape for w in model.trainable_weights) == 23_508_032
  assert model.count_params() == 23_561_152
  assert resnet.out_channels(50) == 2048 == model.output['c5'].shape[-1]


def test_resnet18_parameter_count_is_torchvision_minus_fc():
  # torchvision resnet18, by arithmetic: conv kernels + BN (gamma, beta) per conv.
  def conv_bn(cin, cout, k):
    return cin * cout * k * k + 2 * cout
  count, cin = conv_bn(3, 64, 7), 64
  for cout in (64, 128, 256, 512):
    for block in range(2):
      count += conv_bn(cin, cout, 3) + conv_bn(cout, cout, 3)
      if cin != cout:
        count += conv_bn(cin, cout, 1)
      cin = cout
  assert count == 11_689_512 - (512 * 1000 + 1000)  # torchvision's total minus fc
  model = resnet.ResNet(18)
  assert _count(w.shape for w in model.trainable_weights) == count
  assert resnet.out_channels(18) == 512


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('output_stride', [32, 16])
def test_endpoint_shapes(resnet50, depth, output_stride):
  model = resnet50[output_stride] if depth == 50 else resnet.ResNet(18, output_stride=output_stride)
  expansion = 4 if depth == 50 else 1
  for size in (224, 64):
    outputs = model(keras.Input((size, size, 3)))
    assert {k: tuple(v.shape[1:]) for k, v in outputs.items()} == {
        'c2': (size // 4, size // 4, 64 * expansion),
        'c3': (size // 8, size // 8, 128 * expansion),
        'c4': (size // 16, size // 16, 256 * expansion),
        'c5': (size // output_stride, size // output_stride, 512 * expansion),
    }


def test_width_scales_channels():
  model = resnet.ResNet(18, width=0.5)
  assert model.get_layer('conv1').filters == 32
  assert model.output['c5'].shape[-1] == resnet.out_channels(18, 0.5) == 256


def test_zero_init_residual():
  model = resnet.ResNet(18, zero_init_residual=True)
  assert not np.any(model.get_layer('layer1_0_bn2').gamma.numpy())
  assert np.all(model.get_layer('layer1_0_bn1').gamma.numpy() == 1.0)
  assert np.all(resnet.ResNet(18).get_layer('layer1_0_bn2').gamma.numpy() == 1.0)


def test_conv_init_is_he_normal_fan_out(resnet50):
  kernel = resnet50[32].get_layer('layer3_0_conv2').kernel.numpy()  # 3x3, 256 -> 256
  np.testing.assert_allclose(kernel.std(), np.sqrt(2.0 / (3 * 3 * 256)), rtol=0.02)


def test_torchvision_names(resnet50):
  model = resnet50[32]
  names = [name for name, _ in resnet.torchvision_names(model)]
  assert names[:6] == ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean',
                       'bn1.running_var', 'layer1.0.conv1.weight']
  block = names[names.index('layer1.0.conv3.weight'):names.index('layer1.1.conv1.weight')]
  assert block == ['layer1.0.conv3.weight', 'layer1.0.bn3.weight', 'layer1.0.bn3.bias',
                   'layer1.0.bn3.running_mean', 'layer1.0.bn3.running_var',
                   'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight',
                   'layer1.0.downsample.1.bias', 'layer1.0.downsample.1.running_mean',
                   'layer1.0.downsample.1.running_var']
  assert names[-1] == 'layer4.2.bn3.running_var'
  # torchvision resnet50's state_dict: 320 keys, less fc (2) and num_batches_tracked (53).
  assert len(names) == len(set(names)) == 320 - 2 - 53
  assert len(model.weights) == len(names)
  assert resnet.torchvision_name('layer4_2_downsample_bn') == 'layer4.2.downsample.1'


# A plain numpy forward of torchvision's ResNet, reading weights by torchvision name.
def _np_conv(x, w, stride, dilation):
  k = w.shape[0]
  pad = k // 2 * dilation
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  h = (x.shape[1] - dilation * (k - 1) - 1) // stride + 1
  v = (x.shape[2] - dilation * (k - 1) - 1) // stride + 1
  out = 0.0
  for i in range(k):
    for j in range(k):
      patch = x[:, i * dilation:i * dilation + stride * (h - 1) + 1:stride,
                j * dilation:j * dilation + stride * (v - 1) + 1:stride]
      out = out + patch @ w[i, j]
  return out


def _np_bn(x, p, name):
  return ((x - p[name + '.running_mean']) / np.sqrt(p[name + '.running_var'] + 1e-5)
          * p[name + '.weight'] + p[name + '.bias'])


def _np_maxpool(x):
  x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
  h, w = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
  return np.max([x[:, i:i + 2 * h - 1:2, j:j + 2 * w - 1:2] for i in range(3) for j in range(3)],
                axis=0)


def _np_resnet(x, p, blocks, output_stride):
  relu = lambda t: np.maximum(t, 0.0)
  x = _np_maxpool(relu(_np_bn(_np_conv(x, p['conv1.weight'], 2, 1), p, 'bn1')))
  endpoints = {}
  for stage, num_blocks in enumerate(blocks, start=1):
    dilated = stage == 4 and output_stride == 16
    for b in range(num_blocks):
      name = f'layer{stage}.{b}'
      stride = 2 if b == 0 and stage > 1 and not dilated else 1
      dilation = 2 if dilated else 1
      convs = sorted(k[:-len('.weight')] for k in p if k.startswith(name + '.conv'))
      y, first_3x3 = x, True
      for i, conv in enumerate(convs, start=1):
        w = p[conv + '.weight']
        if w.shape[0] == 3:  # v1.5: the block's stride sits on its first 3x3 conv
          y, first_3x3 = _np_conv(y, w, stride if first_3x3 else 1, dilation), False
        else:
          y = _np_conv(y, w, 1, 1)
        y = _np_bn(y, p, f'{name}.bn{i}')
        y = relu(y) if i < len(convs) else y
      if name + '.downsample.0.weight' in p:
        x = _np_bn(_np_conv(x, p[name + '.downsample.0.weight'], stride, 1), p,
                   name + '.downsample.1')
      x = relu(y + x)
    endpoints[f'c{stage + 1}'] = x
  return endpoints


@pytest.mark.parametrize('depth,blocks,output_stride', [
    (18, (2, 2, 2, 2), 32),
    (50, (3, 4, 6, 3), 16),
])
def test_forward_matches_numpy_torchvision(resnet50, depth, blocks, output_stride):
  rng = np.random.default_rng(5)
  model = resnet50[output_stride] if depth == 50 else resnet.ResNet(depth)
  for layer in model.layers:
    if isinstance(layer, resnet.BatchNorm):
      c = layer.gamma.shape[0]
      layer.set_weights([rng.uniform(0.5, 1.0, c), rng.normal(0.0, 0.1, c),
                         rng.normal(0.0, 0.1, c), rng.uniform(1.0, 2.0, c)])
  params = {name: v.numpy().astype(np.float64) for name, v in resnet.torchvision_names(model)}
  x = rng.normal(size=(2, 45, 38, 3))  # odd sizes: padding must be symmetric as torchvision's
  want = _np_resnet(x, params, blocks, output_stride)
  got = model(x.astype(np.float32), training=False)
  for key in ('c2', 'c3', 'c4', 'c5'):
    assert got[key].shape == want[key].shape, key
    np.testing.assert_allclose(got[key], want[key], rtol=1e-3, atol=1e-3 * np.abs(want[key]).max(),
                               err_msg=key)


def test_training_call_updates_statistics():
  model = resnet.ResNet(18, output_stride=16)
  x = np.random.default_rng(6).normal(size=(2, 32, 32, 3)).astype(np.float32)
  before = model.get_layer('layer4_1_bn2').moving_mean.numpy()
  model(x, training=True)
  assert not np.allclose(model.get_layer('layer4_1_bn2').moving_mean.numpy(), before)


@pytest.mark.parametrize('dtype,tolerance', [('bfloat16', 0.08), ('float16', 0.01)])
def test_mixed_precision_runs(policy, dtype, tolerance):
  rng = np.random.default_rng(7)
  x = rng.normal(size=(2, 64, 64, 3)).astype(np.float32)
  reference = resnet.ResNet(18)
  policy('mixed_' + dtype)
  model = resnet.ResNet(18)
  model.set_weights(reference.get_weights())
  for training in (True, False):
    got, want = model(x, training=training), reference(x, training=training)
    for key in got:
      assert got[key].dtype == dtype
      # Measured 4% (bf16, 8 bits) and 0.6% (fp16) at c5 in training mode, as Keras' own BN.
      err = np.linalg.norm(tf.cast(got[key], tf.float32) - want[key]) / np.linalg.norm(want[key])
      assert err < tolerance, key
  assert all(w.dtype == 'float32' for w in model.weights)
