"""Shared fixtures of the training tests: small synthetic images, the tiny config on them, a
reference run, event reading. (pytest runs in importlib mode: helpers come as fixtures.)"""

import os
import socket

import pytest
import tensorflow as tf

from multisiam_tf.data import synthetic

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory):
  """8 synthetic street scenes of 48x64 px; returns their folder."""
  folder = str(tmp_path_factory.mktemp('data'))
  synthetic.write_dataset(folder, 8, 48, 64)
  return os.path.join(folder, 'images')


@pytest.fixture(scope='session')
def tiny(tiny_config):
  """tiny(data_path, **train) -> the tiny config on data_path with `train.<name>=value`."""
  def make(data_path, **train):
    return tiny_config(overrides={'data.path': data_path,
                                  **{f'train.{k}': v for k, v in train.items()}})
  return make


@pytest.fixture(scope='session')
def read_events():
  """read_events(directory) -> {tag: {step: value}} of its event files (images: [w, h, png...])."""
  def read(directory):
    out = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(directory, 'events.out.tfevents.*'))):
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          array = tf.make_ndarray(value.tensor)
          out.setdefault(value.tag, {})[event.step] = array.item() if array.ndim == 0 else array
    return out
  return read


@pytest.fixture(scope='session')
def reference_run(image_folder, tiny, tmp_path_factory):
  """The tiny config trained start to end in this process: (workdir, model)."""
  from multisiam_tf.train import distribute  # pylint: disable=g-import-not-at-top
  from multisiam_tf.train import loop  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp('reference'))
  model = loop.train(tiny(image_folder), workdir, distribute.make_strategy('default'))
  return workdir, model


@pytest.fixture
def free_ports():
  """free_ports(n) -> n distinct free TCP ports on 127.0.0.1."""
  def ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    numbers = [s.getsockname()[1] for s in sockets]
    for s in sockets:
      s.close()
    return numbers
  return ports


@pytest.fixture
def subprocess_env():
  """The environment of test subprocesses: the repository importable, TF quiet."""
  path = [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('TF_CONFIG', None)
  return env
