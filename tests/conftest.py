"""Fixtures of every test folder. (pytest runs in importlib mode: helpers come as fixtures.)"""

import os

import pytest

from multisiam_tf import config as config_lib

TINY_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tiny_config.py')


@pytest.fixture(scope='session')
def tiny_config():
  """tiny_config(arg='', overrides=None) -> tests/tiny_config.py:arg with dotted overrides,
  validated."""
  get_config = config_lib.load(TINY_CONFIG).get_config

  def make(arg='', overrides=None):
    return config_lib.validate(config_lib.override(get_config(arg), overrides or {}))
  return make
