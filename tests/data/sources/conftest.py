"""Fixtures of the source tests: the real Waymo v1 frame, when the development checkout has it."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for sources_testlib

WAYMO_FRAME = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..',
                           'shared', 'data', 'waymo_v1', 'pvps_data_one_frame.tfrecord')


@pytest.fixture
def waymo_frame():
  if not os.path.exists(WAYMO_FRAME):
    pytest.skip(f'the real Waymo v1 frame is not at {os.path.normpath(WAYMO_FRAME)} (a '
                'development checkout has it in ../shared/data)')
  return os.path.normpath(WAYMO_FRAME)
