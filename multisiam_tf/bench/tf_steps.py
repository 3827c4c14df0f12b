"""TensorFlow contenders, one per worker process (worker.py):

  multisiam, byol   the project's training update as pretraining runs it: train/loop.py's
                    make_train_loop on build_model (eqs. 1-11, LARS, the EMA target), one
                    update per call, on a batch held in memory (the input pipeline is
                    `--what input`'s subject)
  bare              the online backbone forward and backward on both views and the target
                    backbone forward on both: the floor any Siamese method pays
"""

import time

import numpy as np
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.bench import worker
from multisiam_tf.models import resnet
from multisiam_tf.train import distribute
from multisiam_tf.train import loop

POLICIES = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16'}


def benchmark_config(settings):
  """The default (paper) config at the benchmark's depth, view size and batch, in steps."""
  config = config_lib.override(config_lib.defaults(), {
      'model.method': 'byol' if settings['contender'] == 'byol' else 'multisiam',
      'model.backbone.depth': settings['depth'], 'data.image_size': settings['image_size'],
      'train.batch_size': settings['batch'], 'train.steps': 1000,
      'train.precision': POLICIES[settings['precision']]})
  return config_lib.resolve_schedule(config)


def synthetic_batch(batch, size, seed=0):
  """A batch of views (DESIGN.md's contract) with overlapping boxes, random flips."""
  rng = np.random.default_rng(seed)
  views = {f'view{i}': rng.standard_normal([batch, size, size, 3], np.float32) for i in (1, 2)}
  box1 = np.tile(np.float32([[0.1, 0.0, 0.8, 0.7]]), [batch, 1])
  box2 = np.tile(np.float32([[0.3, 0.2, 1.0, 0.9]]), [batch, 1])
  flips = {f'flip{i}': rng.random(batch) < 0.5 for i in (1, 2)}
  return {**views, 'box1': box1, 'box2': box2, **flips, 'fallback': np.zeros(batch, bool)}


def training_update(model, batch):
  """step(): one update of loop.make_train_loop, waited for."""
  strategy = tf.distribute.get_strategy()
  step = tf.Variable(0, dtype=tf.int64, trainable=False)
  train_loop = loop.make_train_loop(model, strategy, step, accumulate_steps=1)
  iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
  one = tf.constant(1, tf.int64)
  return lambda: train_loop(iterator, one)['loss'].numpy()


def bare_update(config, batch):
  """step(): online backbone forward + backward on both views, target backbone forward (the
  backbones alone: no heads or optimizer slots in this worker's memory)."""
  online, target = (resnet.ResNet(config.model.backbone.depth, name=name)
                    for name in ('online_backbone', 'target_backbone'))
  views = [tf.constant(batch['view1']), tf.constant(batch['view2'])]

  @tf.function(autograph=False)
  def step():
    with tf.GradientTape() as tape:
      loss = tf.add_n([tf.reduce_mean(tf.cast(online(v, training=True)['c5'], tf.float32))
                       for v in views])
    grads = tape.gradient(loss, online.trainable_variables)
    # BN in training mode, as the target runs in the training step.
    target_sum = tf.add_n([tf.reduce_sum(tf.cast(target(v, training=True)['c5'], tf.float32))
                           for v in views])
    return tf.linalg.global_norm(grads) + 0.0 * target_sum
  return lambda: step().numpy()


def matmul_rate(policy):
  """A function n -> FLOP/s of an n x n matmul in the policy's compute dtype (best of 5)."""
  dtype = tf.bfloat16 if policy == 'mixed_bfloat16' else tf.float32

  def rate(n):
    a = tf.random.normal([n, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    matmul().numpy()
    return 2 * n ** 3 / min(_seconds(lambda: matmul().numpy()) for _ in range(5))
  return rate


def _seconds(run):
  start = time.perf_counter()
  run()
  return time.perf_counter() - start


def device_name():
  """'CPU', or the GPU's name where TensorFlow places the ops."""
  gpus = tf.config.list_physical_devices('GPU')
  if not gpus:
    return 'CPU'
  return tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')


def build(settings):
  config = benchmark_config(settings)
  policy = distribute.choose_precision(config.train.precision, tf.distribute.get_strategy())
  batch = synthetic_batch(settings['batch'], settings['image_size'])
  if settings['contender'] == 'bare':
    step = bare_update(config, batch)
  else:
    step = training_update(loop.build_model(config), batch)
  return step, matmul_rate(policy), device_name()


if __name__ == '__main__':
  # --profile_dir: a trace for TensorBoard's profile plugin (its trace viewer).
  worker.main(build, trace=tf.profiler.experimental.Profile)
