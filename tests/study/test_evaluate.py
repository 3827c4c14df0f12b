"""A study's stored evaluations are reused only for the same options and the same data."""

import json
import os

import ml_collections
import pytest

from multisiam_tf.data import synthetic
from multisiam_tf.study import evaluate
from multisiam_tf.study import runs


@pytest.fixture
def random_init(tmp_path):
  config = ml_collections.ConfigDict({'model': {'backbone': {
      'depth': 18, 'width': 0.25, 'output_stride': 32}}})
  return runs.Run(runs.BASELINE, 0, str(tmp_path / 'random_init'), config, (0,), ())


@pytest.fixture
def data(tmp_path):
  synthetic.write_dataset(str(tmp_path / 'train'), 4, 32, 32)
  synthetic.write_dataset(str(tmp_path / 'val'), 2, 32, 32, seed=100)
  return evaluate.DataSpec(str(tmp_path / 'train'), str(tmp_path / 'val'), (32, 32), 9)


def _probe_runs(random_init):
  record = os.path.join(random_init.workdir, evaluate.RESULTS, 'probe-0.json')
  return os.path.getmtime(record) if os.path.exists(record) else None


def test_a_stored_score_is_reused_for_the_same_data_and_redone_for_other_data(random_init, data):
  options = {'probe': {'num_classes': 9, 'ignore_index': 255, 'use_c4': False, 'epochs': 1}}
  evaluate.evaluate_all([random_init], options, data)
  first = _probe_runs(random_init)
  evaluate.evaluate_all([random_init], options, data)
  assert _probe_runs(random_init) == first  # the same options and data: not evaluated again
  for other in (data._replace(train_images=2), data._replace(size=(32, 48))):
    evaluate.evaluate_all([random_init], options, other)
    with open(os.path.join(random_init.workdir, evaluate.RESULTS, 'probe-0.json')) as f:
      record = json.load(f)
    assert record['study_data']['train_images'] == other.train_images
    assert record['study_data']['size'] == list(other.size)
    assert record['train_images'] == (2 if other.train_images else 4)
