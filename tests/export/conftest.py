"""Shared fixtures of the export tests: a tiny ResNet with random statistics, its SavedModel."""

import os
import sys

import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for export_testlib

from multisiam_tf.export import serving  # pylint: disable=g-import-not-at-top,wrong-import-position
import export_testlib  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope='session')
def backbone():
  return export_testlib.random_backbone()


@pytest.fixture(scope='session')
def saved_model_dir(backbone, tmp_path_factory):
  """The backbone exported once as saved_models/tiny/1 (TF Serving's layout)."""
  out = str(tmp_path_factory.mktemp('saved_models') / 'tiny' / '1')
  return serving.export_saved_model(backbone, out, image_size=export_testlib.IMAGE_SIZE)


@pytest.fixture(scope='session')
def loaded(saved_model_dir):
  return tf.saved_model.load(saved_model_dir)
