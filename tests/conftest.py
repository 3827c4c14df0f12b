"""Fixtures of every test folder. (pytest runs in importlib mode: helpers come as fixtures.)"""

import os

import keras
import pytest

from multisiam_tf import config as config_lib

TINY_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tiny_config.py')
# The lane: `make test` runs every test in float32, then the tests that take `lane_precision`
# again with MULTISIAM_TEST_PRECISION=mixed_bfloat16 (emulated where the CPU lacks bfloat16).
LANE_PRECISION = os.environ.get('MULTISIAM_TEST_PRECISION', 'float32')


def pytest_collection_modifyitems(config, items):
  """Outside the float32 lane only the tests that run in the lane's precision are collected."""
  if LANE_PRECISION == 'float32':
    return
  other = [item for item in items if 'lane_precision' not in getattr(item, 'fixturenames', ())]
  config.hook.pytest_deselected(items=other)
  items[:] = [item for item in items if item not in other]


@pytest.fixture(autouse=True)
def float32_policy():
  """Every test starts in float32: Keras' policy is process-global, and a test that sets another
  must not leak it into the next one on the same worker."""
  keras.mixed_precision.set_global_policy('float32')
  yield
  keras.mixed_precision.set_global_policy('float32')


@pytest.fixture(scope='session')
def lane_precision():
  """The precision of this lane's whole-run tests: float32, or mixed_bfloat16 in the second lane."""
  return LANE_PRECISION


@pytest.fixture(scope='session')
def tiny_config(lane_precision):
  """tiny_config(arg='', overrides=None) -> tests/tiny_config.py:arg in the lane's precision with
  dotted overrides, validated."""
  get_config = config_lib.load(TINY_CONFIG).get_config

  def make(arg='', overrides=None):
    overrides = {'train.precision': lane_precision, **(overrides or {})}
    return config_lib.validate(config_lib.override(get_config(arg), overrides))
  return make
