"""The backbone as Keras files: `backbone.weights.h5` (values only) and `backbone.keras` (whole).

`backbone.keras` reloads with `keras.saving.load_model(path)` once `multisiam_tf.models.resnet`
is imported (it registers the BatchNorm layer); `backbone.weights.h5` loads into
`resnet.ResNet(depth, width)` built with the run's config.
"""

import os

import tensorflow as tf

WEIGHTS_FILE = 'backbone.weights.h5'
MODEL_FILE = 'backbone.keras'


def export_keras(backbone, out_dir):
  """Writes both files into `out_dir`; returns their paths (weights, model)."""
  tf.io.gfile.makedirs(out_dir)
  weights, model = os.path.join(out_dir, WEIGHTS_FILE), os.path.join(out_dir, MODEL_FILE)
  backbone.save_weights(weights)
  backbone.save(model)
  return weights, model
