"""The Detectron2 .pkl read back, and a plain numpy forward from its arrays against Keras."""

import pickle

import keras
import numpy as np
import pytest

from multisiam_tf.export import detectron2
from multisiam_tf.models import resnet

from export_testlib import random_backbone


def test_names():
  assert [detectron2.detectron2_name(n) for n in (
      'conv1.weight', 'bn1.running_var', 'layer1.0.conv2.weight', 'layer1.0.bn3.bias',
      'layer4.2.downsample.0.weight', 'layer3.11.downsample.1.running_mean')] == [
          'stem.conv1.weight', 'stem.conv1.norm.running_var', 'res2.0.conv2.weight',
          'res2.0.conv3.norm.bias', 'res5.2.shortcut.weight', 'res4.11.shortcut.norm.running_mean']


def _conv(x, weight, stride, pad):
  """PyTorch's conv2d (no bias) on HWC x with an OIHW weight."""
  x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
  _, _, kh, kw = weight.shape
  oh, ow = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
  out = np.zeros((oh, ow, weight.shape[0]), np.float64)
  for i in range(kh):
    for j in range(kw):
      patch = x[i:i + stride * oh:stride, j:j + stride * ow:stride]
      out += patch @ weight[:, :, i, j].T
  return out


def _bn(x, state, prefix):
  w, b, mean, var = (state[f'{prefix}.{k}'] for k in ('weight', 'bias', 'running_mean',
                                                        'running_var'))
  return (x - mean) / np.sqrt(var + resnet.BN_EPSILON) * w + b


def _max_pool(x):
  """3x3, stride 2, padding 1 (with -inf, as PyTorch)."""
  x = np.pad(x, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
  oh, ow = (x.shape[0] - 3) // 2 + 1, (x.shape[1] - 3) // 2 + 1
  return np.max([x[i:i + 2 * oh:2, j:j + 2 * ow:2] for i in range(3) for j in range(3)], axis=0)


def _res2_0(x, state, bottleneck):
  """Detectron2's first res2 block: BasicBlock (3x3, 3x3) or BottleneckBlock (1x1, 3x3, 1x1)."""
  relu = lambda t: np.maximum(t, 0)
  if bottleneck:
    y = relu(_bn(_conv(x, state['res2.0.conv1.weight'], 1, 0), state, 'res2.0.conv1.norm'))
    y = relu(_bn(_conv(y, state['res2.0.conv2.weight'], 1, 1), state, 'res2.0.conv2.norm'))
    y = _bn(_conv(y, state['res2.0.conv3.weight'], 1, 0), state, 'res2.0.conv3.norm')
  else:
    y = relu(_bn(_conv(x, state['res2.0.conv1.weight'], 1, 1), state, 'res2.0.conv1.norm'))
    y = _bn(_conv(y, state['res2.0.conv2.weight'], 1, 1), state, 'res2.0.conv2.norm')
  shortcut = x
  if 'res2.0.shortcut.weight' in state:
    shortcut = _bn(_conv(x, state['res2.0.shortcut.weight'], 1, 0), state, 'res2.0.shortcut.norm')
  return relu(y + shortcut)


@pytest.mark.parametrize('depth', [18, 50])
def test_pkl_forward_matches_keras(depth, tmp_path):
  backbone = random_backbone(depth, 0.25, seed=depth)
  path = detectron2.export_detectron2(backbone, str(tmp_path / 'backbone.pkl'))
  with open(path, 'rb') as f:
    payload = pickle.load(f)
  assert payload['__author__'] == 'multisiam_tf' and payload['matching_heuristics'] is True
  state = payload['model']
  assert len(state) == len(backbone.weights)
  assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
  assert state['stem.conv1.weight'].shape == (16, 3, 7, 7)  # OIHW
  assert ('res2.0.shortcut.weight' in state) == (depth == 50)  # BasicBlock keeps identity

  image = np.random.default_rng(0).normal(size=(37, 45, 3)).astype(np.float32)
  stem = _max_pool(np.maximum(_bn(_conv(image, state['stem.conv1.weight'], 2, 3), state,
                                  'stem.conv1.norm'), 0))
  block = _res2_0(stem, state, bottleneck=depth == 50)
  intermediate = keras.Model(backbone.input, [backbone.get_layer('maxpool').output,
                                              backbone.get_layer('layer1_0_relu').output])
  keras_stem, keras_block = intermediate(image[None], training=False)
  np.testing.assert_allclose(stem, keras_stem[0], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(block, keras_block[0], atol=1e-4, rtol=1e-4)
