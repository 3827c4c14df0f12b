"""Trains the tiny config for 3 steps on the same global batches under one strategy and prints
{step: loss} as JSON: `default` on one device, or `mirrored` (synchronised BN) over two logical
CPUs, which must be set before TensorFlow initialises, hence a process of its own.

  python tests/train/mirrored_check.py default|mirrored WORKDIR PRECISION

The batches are seeded per global step and split into per-replica slices, so both strategies see
the same global batch.
"""

import json
import os
import sys

import tensorflow as tf

# pylint: disable=g-import-not-at-top,wrong-import-position
from multisiam_tf import config as config_lib
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import summaries

TINY_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tiny_config.py')

GLOBAL_BATCH = 4


def same_global_batches(config, *, seed, input_context=None, batch_size=None, skipped=None):
  """Element j: slice j % R of global batch j // R, R the replicas this pipeline feeds."""
  del batch_size, skipped
  replicas = input_context.num_replicas_in_sync // input_context.num_input_pipelines
  size = config.data.image_size

  def element(j):
    global_seed = tf.stack([tf.constant(seed, tf.int64), j // replicas])
    views = tf.random.stateless_normal([2, GLOBAL_BATCH, size, size, 3], global_seed)
    flips = tf.random.stateless_uniform([2, GLOBAL_BATCH], global_seed) < 0.5
    box1 = tf.tile([[0.0, 0.0, 0.8, 0.9]], [GLOBAL_BATCH, 1])
    box2 = tf.tile([[0.1, 0.2, 1.0, 1.0]], [GLOBAL_BATCH, 1])
    batch = {'view1': views[0], 'view2': views[1], 'box1': box1, 'box2': box2,
             'flip1': flips[0], 'flip2': flips[1], 'fallback': tf.zeros([GLOBAL_BATCH], tf.bool)}
    per_replica = GLOBAL_BATCH // input_context.num_replicas_in_sync
    start = (input_context.input_pipeline_id * replicas + j % replicas) * per_replica
    return {k: v[start:start + per_replica] for k, v in batch.items()}

  return tf.data.Dataset.range(10**9).map(element)


def main(name, workdir, precision):
  if name == 'mirrored':
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  # Graph optimisation costs more than these 3 tiny steps gain from it; the maths is the same.
  tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
  loop.pipeline.make_dataset = same_global_batches
  config = config_lib.load(TINY_CONFIG).get_config()
  config.model.backbone.sync_bn = name == 'mirrored'  # one device: global batch statistics
  config.train.batch_size = GLOBAL_BATCH
  config.train.steps = 3
  config.train.precision = precision
  config.train.image_every = 100
  strategy = distribute.make_strategy(name)
  assert strategy.num_replicas_in_sync == (2 if name == 'mirrored' else 1)
  loop.train(config, workdir, strategy)
  losses = {}
  for path in tf.io.gfile.glob(os.path.join(workdir, summaries.EVENTS, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'loss':
          losses[event.step] = float(tf.make_ndarray(value.tensor))
  print(json.dumps(losses))


if __name__ == '__main__':
  main(*sys.argv[1:])
