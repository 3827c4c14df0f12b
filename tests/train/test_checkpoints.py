"""Checkpoints of a run: the chosen backbone restored, damaged ones named and skipped for the
previous, a garbage state file, a restart with another config, config.json run again."""

import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.train import checkpoints
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import summaries
from multisiam_tf.train import workdir_lock


def test_restore_backbone_reads_the_chosen_checkpoint(reference_run):
  workdir, model = reference_run
  backbone, config, step = checkpoints.restore_backbone(workdir)
  assert config.train.steps == 6 and step == 6
  final = model.online_backbone.get_weights()
  for restored, trained in zip(backbone.get_weights(), final):
    np.testing.assert_array_equal(restored, trained)
  earlier, _, _ = checkpoints.restore_backbone(workdir, step=2)
  assert not np.array_equal(earlier.get_weights()[0], final[0])


@pytest.mark.parametrize('damage', ['corrupt_data', 'missing_index'])
def test_unreadable_newest_checkpoint_falls_back_to_the_previous(
    reference_run, image_folder, tiny, tmp_path, damage):
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(os.path.join(reference_run[0], checkpoints.CHECKPOINTS), directory)
  newest = os.path.join(directory, 'ckpt-6')
  if damage == 'corrupt_data':
    data = newest + '.data-00000-of-00001'
    with open(data, 'r+b') as f:
      f.seek(os.path.getsize(data) // 2)
      f.write(b'\xff' * 4096)
  else:
    os.remove(newest + '.index')
  model = loop.build_model(tiny(image_folder))
  step = tf.Variable(-1, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, step=step)
  assert checkpoints.restore_newest(checkpoint, directory) == os.path.join(directory, 'ckpt-4')
  assert int(step.numpy()) == 4
  assert int(model.optimizer.iterations.numpy()) == 4


def test_all_checkpoints_unreadable_is_an_error(reference_run, tmp_path):
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(os.path.join(reference_run[0], checkpoints.CHECKPOINTS), directory)
  for name in os.listdir(directory):
    if name.endswith('.index'):
      os.remove(os.path.join(directory, name))
  checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))
  with pytest.raises(RuntimeError, match='no readable checkpoint'):
    checkpoints.restore_newest(checkpoint, directory)


@pytest.mark.parametrize('cut', ['inside_the_index', 'before_the_index'])
def test_a_first_save_killed_midway_starts_afresh(reference_run, tmp_path, caplog, cut):
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(os.path.join(reference_run[0], checkpoints.CHECKPOINTS), directory)
  first, *later = checkpoints.list_steps(directory)
  for name in os.listdir(directory):
    if any(name.startswith(f'ckpt-{step}.') for step in later) or name == 'checkpoint':
      os.remove(os.path.join(directory, name))
  index = checkpoints.checkpoint_path(directory, first) + '.index'
  if cut == 'inside_the_index':  # a kill -9 while the save wrote its last file
    _truncate(index)
  else:
    os.remove(index)
  checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))
  with caplog.at_level('WARNING', logger='absl'):
    assert checkpoints.restore_newest(checkpoint, directory) is None
  assert f'the save of step {first} was interrupted' in caplog.text


def test_two_checkpoints_without_a_complete_index_are_an_error(reference_run, tmp_path):
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(os.path.join(reference_run[0], checkpoints.CHECKPOINTS), directory)
  first, second, *_ = checkpoints.list_steps(directory)
  _truncate(checkpoints.checkpoint_path(directory, first) + '.index')
  for name in os.listdir(directory):
    if not name.startswith((f'ckpt-{first}.', f'ckpt-{second}.data')):
      os.remove(os.path.join(directory, name))
  with pytest.raises(RuntimeError, match=f'no readable checkpoint in .*steps {first}, {second}'):
    checkpoints.restore_newest(tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64)), directory)


def test_every_checkpoint_damaged_is_an_error_naming_the_newest_cause(
    reference_run, image_folder, tiny, tmp_path):
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(os.path.join(reference_run[0], checkpoints.CHECKPOINTS), directory)
  for name in os.listdir(directory):
    if '.data-' in name:
      with open(os.path.join(directory, name), 'r+b') as f:
        f.truncate(os.path.getsize(os.path.join(directory, name)) // 2)
  model = loop.build_model(tiny(image_folder))
  with pytest.raises(RuntimeError, match='no readable checkpoint in') as error:
    checkpoints.restore_newest(tf.train.Checkpoint(model=model), directory)
  newest = checkpoints.checkpoint_path(directory, checkpoints.list_steps(directory)[-1])
  assert f'the newest: checkpoint {newest} cannot be restored: {newest}.data-' in str(error.value)
  assert 'resume with that version' in str(error.value)


@pytest.fixture
def finished_run(reference_run, tmp_path):
  """A copy of the reference run's workdir (config.json, ckpt-2, -4, -6) to damage."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference_run[0], workdir, ignore=shutil.ignore_patterns('events.*'))
  return workdir


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def test_truncated_newest_data_file_falls_back_and_names_the_file(finished_run, caplog):
  directory = os.path.join(finished_run, checkpoints.CHECKPOINTS)
  data = os.path.join(directory, 'ckpt-6.data-00000-of-00001')
  _truncate(data)
  earlier, _, _ = checkpoints.restore_backbone(finished_run, step=4)
  backbone, _, step = checkpoints.restore_backbone(finished_run)
  assert step == 4
  assert f'{data} is damaged' in caplog.text
  for a, b in zip(backbone.get_weights(), earlier.get_weights()):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match=f'{data} is damaged'):
    checkpoints.restore_backbone(finished_run, step=6)
  with pytest.raises(FileNotFoundError, match=r'no checkpoint of step 5 .* \[2, 4, 6\]'):
    checkpoints.restore_backbone(finished_run, step=5)


def test_garbage_state_file_resumes_from_the_listed_checkpoints(
    finished_run, image_folder, tiny, caplog):
  directory = os.path.join(finished_run, checkpoints.CHECKPOINTS)
  with open(os.path.join(directory, 'checkpoint'), 'w') as f:
    f.write('\x00garbage{')
  newest = os.path.join(directory, 'ckpt-6.index')
  written = os.path.getmtime(newest)
  with caplog.at_level(logging.INFO, logger='absl'):  # absl's level, which parsed flags may raise
    model = loop.train(tiny(image_folder, log_every=3), finished_run,
                       distribute.make_strategy('default'))
  assert 'already complete at step 6' in caplog.text and 'from scratch' not in caplog.text
  assert int(model.optimizer.iterations.numpy()) == 6
  assert os.path.getmtime(newest) == written
  assert tf.train.latest_checkpoint(directory) == os.path.join(directory, 'ckpt-6')
  with open(os.path.join(finished_run, checkpoints.CONFIG)) as f:
    assert json.load(f)['run']['changes'] == [{'train.log_every': [1, 3]}]


def test_restart_may_change_schedule_monitoring_and_seed_but_not_the_model(tiny_config):
  """check_restart on two configs: train.*, optim.*, eval.* and seed changes are returned,
  a model.* or data.* change is refused naming the field."""
  saved = tiny_config()
  allowed = {'train.log_every': 7, 'optim.base_lr': 0.5, 'eval.every': 3, 'seed': 9}
  changed = checkpoints.check_restart(tiny_config(overrides=allowed), saved)
  assert {k: v[1] for k, v in changed.items()} == allowed
  for field, value in (('model.kmeans.k', 3), ('data.iou_threshold', 0.3)):
    with pytest.raises(checkpoints.ConfigChanged, match=rf'{field}: \S+ in the workdir'):
      checkpoints.check_restart(tiny_config(overrides={field: value}), saved)


@pytest.mark.parametrize('field, value', [('model.backbone.depth', 34), ('data.image_size', 64)])
def test_restart_with_another_model_is_refused_before_writing(
    finished_run, image_folder, tiny_config, field, value):
  path = os.path.join(finished_run, checkpoints.CONFIG)
  with open(path) as f:
    before = f.read()
  config = tiny_config(overrides={'data.path': image_folder, field: value})
  with pytest.raises(checkpoints.ConfigChanged, match=rf'{field}: \S+ in the workdir, {value} '
                                                      r'now.*--workdir elsewhere'):
    loop.train(config, finished_run, distribute.make_strategy('default'))
  with open(path) as f:
    assert f.read() == before
  assert not os.path.exists(os.path.join(finished_run, workdir_lock.LOCK))


def test_config_json_records_the_run_and_reruns_it(reference_run, image_folder, tiny_config,
                                                   tmp_path, read_events, lane_precision):
  """--config runs/x/config.json: the same losses, the precision `auto` chose, the record."""
  path = os.path.join(reference_run[0], checkpoints.CONFIG)
  with open(path) as f:
    record = json.load(f)['run']
  assert (record['precision'], record['replicas']) == (lane_precision, 1)  # the run's lane
  assert record['versions']['tensorflow'] == tf.__version__
  assert re.fullmatch(r'[0-9a-f]{40}(-dirty)?|', record['git_commit'])
  config = config_lib.validate(config_lib._FileParser('config').parse(path))
  again = str(tmp_path / 'again')
  loop.train(config, again, distribute.make_strategy('default'))
  first, rerun = (read_events(os.path.join(w, summaries.EVENTS))['loss']
                  for w in (reference_run[0], again))
  assert rerun == first
