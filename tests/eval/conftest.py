"""Shared fixtures: labelled synthetic scenes, a tiny random-init ResNet, the CamVid folder."""

import os
import sys
from typing import NamedTuple

import pytest

from multisiam_tf.data import synthetic
from multisiam_tf.eval import probe

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for eval_testlib

CAMVID = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared',
                      'data', 'camvid_val')


class Scenes(NamedTuple):
  folder: str
  num: int
  size: tuple


@pytest.fixture(scope='session')
def scenes(tmp_path_factory):
  """24 synthetic scenes at 64x96, written as `make_demo_data.py` writes them."""
  folder = str(tmp_path_factory.mktemp('scenes'))
  synthetic.write_dataset(folder, 24, 64, 96)
  return Scenes(folder, 24, (64, 96))


@pytest.fixture(scope='session')
def tiny_architecture():
  """ResNet-18 at quarter width, output stride 32: C5 has 128 channels, C4 64."""
  return (18, 0.25, 32)


@pytest.fixture(scope='session')
def tiny_backbone(tiny_architecture):
  return probe.random_backbone(tiny_architecture, seed=0)


@pytest.fixture(scope='session')
def tiny_features(tiny_backbone):
  """Feature function of the random-init tiny ResNet (seed 0)."""
  return probe.keras_features(tiny_backbone)


@pytest.fixture
def camvid():
  if not os.path.isdir(CAMVID):
    pytest.skip(f'CamVid frames not found at {os.path.normpath(CAMVID)} (a development '
                'checkout has them in ../shared/data)')
  return CAMVID
