"""Model Garden's own ResNet restores the exported checkpoint and computes our backbone's maps.

Needs the optional extra (`make model-garden`); skipped without it.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.export import model_garden

from export_testlib import random_backbone

pytest.importorskip('official.vision.modeling.backbones',
                    reason='TF Model Garden is an optional extra: make model-garden')
# pylint: disable=g-import-not-at-top,wrong-import-position
from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.modeling.backbones import factory
import tf_keras
# pylint: enable=g-import-not-at-top,wrong-import-position

CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'downstream')


def _restore(mg_backbone, checkpoint):
  """What a Model Garden task does for `init_checkpoint_modules: backbone`."""
  if tf.io.gfile.isdir(checkpoint):
    checkpoint = tf.train.latest_checkpoint(checkpoint)
  status = tf.train.Checkpoint(backbone=mg_backbone).read(checkpoint)
  status.expect_partial().assert_existing_objects_matched()


def _assert_endpoints_close(ours, theirs, pairs):
  """Within 1e-5 of each map's largest value: full-width maps of random weights reach the
  hundreds, where float32 summation order alone moves small entries by 1e-3."""
  for a, b in pairs:
    scale = max(1.0, float(np.abs(ours[a]).max()))
    assert float(np.abs(ours[a] - theirs[b]).max()) <= 1e-5 * scale, a


@pytest.mark.parametrize('depth', [18, 50])
def test_model_garden_resnet_restores_our_endpoints(depth, tmp_path):
  backbone = random_backbone(depth, 0.25, seed=depth)
  path = model_garden.export_model_garden(backbone, depth, 0.25, str(tmp_path), step=3)
  assert os.path.basename(path) == 'ckpt-3'
  mg_resnet = model_garden.build_model_garden_resnet(depth, 0.25)
  tf.train.Checkpoint(backbone=mg_resnet).read(path).assert_existing_objects_matched()
  pairs = [(f'c{level}', str(level)) for level in (2, 3, 4, 5)]
  images = np.random.default_rng(0).normal(size=(2, 65, 65, 3)).astype(np.float32)
  _assert_endpoints_close(backbone(images, training=False), mg_resnet(images, training=False),
                          pairs)
  # The documented caveat: on even sizes Model Garden's 'same' padding shifts strided grids.
  images = images[:, :64, :64]
  with pytest.raises(AssertionError):
    _assert_endpoints_close(backbone(images, training=False), mg_resnet(images, training=False),
                            pairs)


@pytest.fixture(scope='module')
def resnet50_export(tmp_path_factory):
  """A full-width ResNet-50 at output stride 16 (DilatedResNet has no width multiplier)."""
  backbone = random_backbone(50, 1.0, seed=5, output_stride=16)
  out = str(tmp_path_factory.mktemp('model_garden'))
  model_garden.export_model_garden(backbone, 50, 1.0, out, step=1)
  return backbone, out


@pytest.mark.parametrize('experiment, yaml, pairs', [
    # DilatedResNet's last endpoint is C5 at stride 16, as our output_stride=16.
    ('seg_deeplabv3plus_cityscapes', 'mg_cityscapes_deeplabv3plus.yaml',
     [('c2', '2'), ('c3', '3'), ('c5', '4')]),
    # The plain ResNet runs C5 at stride 32: compare the stages before the dilated one.
    ('maskrcnn_resnetfpn_coco', 'mg_coco_maskrcnn.yaml', [('c2', '2'), ('c3', '3'), ('c4', '4')]),
])
def test_yaml_overrides_restore_the_export(resnet50_export, experiment, yaml, pairs):
  backbone, out = resnet50_export
  config = hyperparams.override_params_dict(
      exp_factory.get_exp_config(experiment), os.path.join(CONFIGS, yaml), is_strict=True)
  assert config.task.init_checkpoint_modules == 'backbone'
  assert config.task.model.norm_activation.norm_epsilon == 1e-5
  mg_backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
      backbone_config=config.task.model.backbone,
      norm_activation_config=config.task.model.norm_activation)
  _restore(mg_backbone, out)
  images = np.random.default_rng(1).normal(size=(1, 65, 65, 3)).astype(np.float32)
  _assert_endpoints_close(backbone(images, training=False), mg_backbone(images, training=False),
                          pairs)
