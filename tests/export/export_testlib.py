"""Helpers of the export tests (a module of its own: pytest runs with --import-mode=importlib,
where conftest.py is not importable)."""

import numpy as np

from multisiam_tf.export import serving
from multisiam_tf.models import resnet

IMAGE_SIZE = 33  # odd at every stride, so torchvision and 'same' padding agree (Model Garden)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet, written out independently
STD = np.array([0.229, 0.224, 0.225], np.float32)


def random_backbone(depth=18, width=0.25, seed=0, **kwargs):
  """A ResNet whose BN gamma, beta and moving statistics are random too, so that a swapped or
  dropped BN variable changes the output."""
  model = resnet.ResNet(depth, width, **kwargs)
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, resnet.BatchNorm):
      c = layer.gamma.shape[0]
      layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
      layer.beta.assign(rng.uniform(-0.2, 0.2, c).astype(np.float32))
      layer.moving_mean.assign(rng.uniform(-0.2, 0.2, c).astype(np.float32))
      layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
  return model


def reference(backbone, images_0_255):
  """The Keras model's endpoints and pooled C5 on 0-255 images, normalised in numpy."""
  x = (np.asarray(images_0_255, np.float32) / 255.0 - MEAN) / STD
  outputs = {k: v.numpy() for k, v in backbone(x, training=False).items()}
  outputs['pooled'] = outputs['c5'].mean(axis=(1, 2))
  return outputs


def assert_outputs_close(actual, expected, atol=1e-4):
  assert set(serving.OUTPUTS) <= set(actual)
  for name in serving.OUTPUTS:
    np.testing.assert_allclose(np.asarray(actual[name]), expected[name], atol=atol, rtol=1e-4,
                               err_msg=name)
