"""backbone.keras and backbone.weights.h5 reload to the same function."""

import keras
import numpy as np

from multisiam_tf.export import keras_weights
from multisiam_tf.models import resnet

from export_testlib import random_backbone


def test_keras_files_reload(tmp_path):
  backbone = random_backbone(seed=3)
  weights, model = keras_weights.export_keras(backbone, str(tmp_path / 'keras'))
  images = np.random.default_rng(0).normal(size=(2, 35, 29, 3)).astype(np.float32)
  expected = backbone(images, training=False)

  reloaded = keras.saving.load_model(model)
  assert any(isinstance(layer, resnet.BatchNorm) for layer in reloaded.layers)
  fresh = resnet.ResNet(18, 0.25)
  fresh.load_weights(weights)
  for other in (reloaded, fresh):
    actual = other(images, training=False)
    for name in ('c2', 'c3', 'c4', 'c5'):
      np.testing.assert_allclose(actual[name], expected[name], atol=1e-5, err_msg=name)
