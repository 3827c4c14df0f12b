"""Checkpoints of a run: the chosen backbone restored, unreadable ones skipped for the previous."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.train import checkpoints
from multisiam_tf.train import loop


def test_restore_backbone_reads_the_chosen_checkpoint(reference_run):
  workdir, model = reference_run
  backbone, config = checkpoints.restore_backbone(workdir)
  assert config.train.steps == 6
  final = model.online_backbone.get_weights()
  for restored, trained in zip(backbone.get_weights(), final):
    np.testing.assert_array_equal(restored, trained)
  earlier, _ = checkpoints.restore_backbone(workdir, step=2)
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
