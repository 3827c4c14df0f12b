"""The online dense probe as a hook of the training loop: its scores, and a run it leaves alone."""

import glob
import json
import os
import random

from keras.src.random import seed_generator  # Keras' global generator: no public getter
import numpy as np

from multisiam_tf.eval import online
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import summaries


def _losses(workdir):
  with open(os.path.join(workdir, summaries.METRICS)) as f:
    lines = [json.loads(line) for line in f]
  return {line['step']: line for line in lines}


def _random_states():
  # Keras' generator first: its creation on first use draws from Python's.
  return (seed_generator.global_seed_generator().state.numpy().tolist(), random.getstate(),
          np.random.get_state()[1].tolist())


def test_probe_every_two_steps_leaves_training_bit_identical(scenes, tiny_config, tmp_path):
  """float32, 4 steps: the same losses to the bit with the probe (and a profiler trace) as
  without; the probe itself changes no BN statistic and draws from no global generator."""
  config = tiny_config(overrides={
      'data.path': os.path.join(scenes.folder, 'images'), 'train.precision': 'float32',
      'train.steps': 4, 'train.image_every': 100, 'eval.every': 2, 'eval.epochs': 2,
      'eval.num_classes': 9, 'eval.size': (64, 96)})
  strategy = distribute.make_strategy('default')
  plain, probed = str(tmp_path / 'plain'), str(tmp_path / 'probed')
  loop.train(config, plain, strategy)
  config.eval.data = scenes.folder
  hooks = online.hooks(config, chief=True) + [summaries.Profiler([1, 3], probed)]
  model = loop.train(config, probed, strategy, hooks)

  without, with_probe = _losses(plain), _losses(probed)
  assert sorted(with_probe) == [1, 2, 3, 4]
  for step in (1, 2, 3, 4):
    assert with_probe[step]['loss'] == without[step]['loss'], step  # exact
  for step in (2, 4):
    assert 0.0 < with_probe[step]['eval/miou'] <= 1.0
    assert any(key.startswith('eval/iou/') for key in with_probe[step])
  assert 'eval/miou' not in with_probe[1] and 'eval/miou' not in without[2]
  assert glob.glob(os.path.join(probed, summaries.PROFILE, 'plugins', 'profile', '*', '*.xplane.pb'))

  statistics = [w.numpy() for w in model.online_backbone.non_trainable_weights]
  states = _random_states()
  assert hooks[0](model, 4)['eval/miou'] > 0
  assert _random_states() == states
  for before, after in zip(statistics, model.online_backbone.non_trainable_weights):
    np.testing.assert_array_equal(before, after.numpy())
