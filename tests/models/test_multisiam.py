"""MultiSiam: EMA, gradient routing, every variant, a short real training run, checkpoints."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.data import pipeline
from multisiam_tf.data import synthetic
from multisiam_tf.models import multisiam
from multisiam_tf.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ABLATIONS = config_lib.load(os.path.join(ROOT, 'configs', 'ablations_waymo.py')).ABLATIONS


@pytest.fixture(scope='session')
def tiny(tiny_config):
  """tiny(overrides) -> the tiny config on 64 px views (a 4x4 C5 map), batch 4, overridden."""
  return lambda overrides=None: tiny_config('64', {'train.batch_size': 4, **(overrides or {})})


def random_batch(config, seed=0):
  rng = np.random.default_rng(seed)
  b, s = config.train.batch_size, config.data.image_size
  y1x1 = rng.uniform(0.0, 0.3, size=(2, b, 2))
  boxes = np.concatenate([y1x1, y1x1 + 0.6], axis=-1).astype(np.float32)
  return {'view1': tf.constant(rng.normal(size=(b, s, s, 3)), tf.float32),
          'view2': tf.constant(rng.normal(size=(b, s, s, 3)), tf.float32),
          'box1': tf.constant(boxes[0]), 'box2': tf.constant(boxes[1]),
          'flip1': tf.constant(rng.random(b) < 0.5), 'flip2': tf.constant(rng.random(b) < 0.5),
          'fallback': tf.constant([True] + [False] * (b - 1))}


@pytest.fixture(scope='module')
def built(tiny):
  config = tiny()
  return loop.build_model(config), config


def trainer(model):
  """update(batch or iterator) -> the metrics of one update of the training loop
  (loop.make_train_loop) on that batch, or on the iterator's next one."""
  train_loop = loop.make_train_loop(model, tf.distribute.get_strategy(),
                                    tf.Variable(0, dtype=tf.int64), accumulate_steps=1)

  def update(batches):
    if isinstance(batches, dict):
      batches = iter(tf.data.Dataset.from_tensors(batches))
    return train_loop(batches, tf.constant(1, tf.int64))
  return update


def weights(variables):
  return [v.numpy().copy() for v in variables]


def target_and_online(model):
  return [(t, o) for target, online in model.target_pairs()
          for t, o in zip(target.trainable_variables, online.trainable_variables)]


def test_target_starts_equal_to_online(built):
  model, _ = built
  pairs = target_and_online(model)
  assert len(pairs) > 20
  for t, o in pairs:
    np.testing.assert_array_equal(t.numpy(), o.numpy())


def test_ema_at_tau_0_copies_online_and_at_tau_1_keeps_target(built):
  model, _ = built
  pairs = target_and_online(model)
  rng = np.random.default_rng(1)
  for _, o in pairs:
    o.assign(o + rng.normal(size=o.shape).astype(np.float32))
  before = [t.numpy().copy() for t, _ in pairs]
  model.update_target(tf.constant(1.0))
  for (t, _), b in zip(pairs, before):
    np.testing.assert_array_equal(t.numpy(), b)
  model.update_target(tf.constant(0.25))  # xi <- 0.25 xi + 0.75 theta (eq. 2)
  for (t, o), b in zip(pairs, before):
    np.testing.assert_allclose(t.numpy(), 0.25 * b + 0.75 * o.numpy(), rtol=1e-5, atol=1e-6)
  model.update_target(tf.constant(0.0))
  for t, o in pairs:
    np.testing.assert_allclose(t.numpy(), o.numpy(), rtol=1e-6)


def test_gradients_reach_online_weights_only(built):
  model, config = built
  batch = random_batch(config)
  target_vars = [t for t, _ in target_and_online(model)]
  with tf.GradientTape(persistent=True) as tape:
    metrics, _ = model.forward(batch, training=True)
  online_grads = tape.gradient(metrics['loss'], model.online_variables)
  target_grads = tape.gradient(metrics['loss'], target_vars)
  assert all(g is None for g in target_grads)
  # Every online weight gets a gradient; the 2D predictor's last layer gets a non-zero one.
  assert all(g is not None for g in online_grads)
  norms = {v.path: float(tf.norm(g)) for v, g in zip(model.online_variables, online_grads)}
  assert sum(n > 0 for n in norms.values()) > 0.9 * len(norms)
  assert {id(v) for v in model.online_variables}.isdisjoint({id(v) for v in target_vars})


def test_update_moves_online_then_target_by_ema(built):
  model, config = built
  update = trainer(model)
  update(random_batch(config, seed=3))  # lr is 0 at step 0 of the warmup
  pairs = target_and_online(model)
  online_before = [o.numpy().copy() for _, o in pairs]
  target_before = [t.numpy().copy() for t, _ in pairs]
  metrics = update(random_batch(config, seed=2))
  tau = float(metrics['tau'])
  assert 0.996 <= tau < 1.0
  assert float(metrics['fallback_rate']) == pytest.approx(0.25)
  moved = 0
  for (t, o), ob, tb in zip(pairs, online_before, target_before):
    moved += not np.array_equal(o.numpy(), ob)
    np.testing.assert_allclose(t.numpy(), tau * tb + (1 - tau) * o.numpy(), rtol=1e-4, atol=1e-6)
  assert moved > 0.9 * len(pairs)


# Ablations that differ only in data or in a number share a code path with one listed here.
SAME_MODEL_AS = {'byol_iou': 'byol', 'iou_0.3': 'offset', 'iou_0.7': 'offset', 'k4': 'k5'}


def _built_from_seed_0(config):
  keras.utils.set_random_seed(0)
  return loop.build_model(config)


def _losses(model, config):
  """forward's losses on random_batch, from the model's current weights."""
  m, _ = model.forward(random_batch(config), training=True)
  return {k: float(m[k]) for k in ('loss_1d', 'loss_2d')}


@pytest.fixture(scope='module')
def full_model_losses(tiny):
  """size -> the full model's losses at its seed-0 init on random_batch, at that view size."""
  cache = {}

  def losses(size):
    if size not in cache:
      config = tiny({'data.image_size': size})
      cache[size] = _losses(_built_from_seed_0(config), config)
    return cache[size]
  return losses


@pytest.mark.parametrize('name', sorted(set(ABLATIONS) - set(SAME_MODEL_AS)))
def test_every_variant_builds_changes_the_full_models_loss_and_steps(
    tiny, full_model_losses, name):
  """From the same init on the same batch, each variant's field changes what the model computes
  (a switch the model ignored would give the full model's losses); two updates stay finite."""
  size = 64 if 'model.kmeans.k' in ABLATIONS[name] else 32  # K above 4 needs a 4x4 map
  config = tiny({'data.image_size': size, **ABLATIONS[name]})
  model = _built_from_seed_0(config)
  at_init, full = _losses(model, config), full_model_losses(size)
  if name == 'offset':
    assert at_init == full
  elif name == 'byol':
    assert at_init['loss_2d'] == 0.0 and at_init != full
  elif name in ('moco', 'cluster'):  # these two build other weights
    assert at_init != full, name
  else:  # the same weights: only the 2D branch may differ
    assert at_init['loss_1d'] == full['loss_1d'] and at_init['loss_2d'] != full['loss_2d'], name
  moco = isinstance(model, multisiam.MultiSiamMoCo)
  queue_before = model.queue_1d.numpy().copy() if moco else None
  update = trainer(model)
  first = update(random_batch(config))
  second = update(random_batch(config))
  for metrics in (first, second):
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
  if config.model.method == 'byol':
    assert float(first['loss_2d']) == 0.0
    assert float(first['loss']) == pytest.approx(float(first['loss_1d']))
  else:
    lam = config.model.loss_lambda
    assert float(first['loss']) == pytest.approx(
        lam * float(first['loss_1d']) + (1 - lam) * float(first['loss_2d']), rel=1e-5)
  if moco:
    # Both directions' keys (2 x batch) enter at the front; the rest moved back, oldest out.
    queue, pushed = model.queue_1d.numpy(), 4 * config.train.batch_size
    np.testing.assert_array_equal(queue[pushed:], queue_before[:-pushed])
    np.testing.assert_allclose(np.linalg.norm(queue[:pushed], axis=1), 1.0, rtol=1e-5)


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('scenes'))
  synthetic.write_dataset(folder, 16, 96, 128)
  return os.path.join(folder, 'images')


@pytest.mark.parametrize('precision', ['float32', 'mixed_bfloat16'])
def test_trains_on_synthetic_scenes_without_collapse(tiny, scenes, precision):
  keras.mixed_precision.set_global_policy(precision)
  try:
    config = tiny({'data.path': scenes, 'train.steps': 20, 'optim.warmup_steps': 2,
                   'optim.base_lr': 2.0, 'model.head.hidden_dim': 64, 'model.kmeans.k': 3})
    keras.utils.set_random_seed(config.seed)  # as a run seeds it: some inits learn slower
    model = loop.build_model(config)
    data = iter(pipeline.make_dataset(config, seed=config.seed))
    update = trainer(model)
    losses = [float(update(data)['loss']) for _ in range(20)]
    std = float(update(data)['projection_std'])
  finally:
    keras.mixed_precision.set_global_policy('float32')
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.05, losses
  # Collapsed projections have std ~0; spread ones 1/sqrt(32) = 0.18. Half of that is alive.
  assert std > 0.5 / np.sqrt(config.model.head.output_dim), std


def test_checkpoint_round_trip_gives_the_same_next_step(tiny, tmp_path):
  config = tiny()
  model = loop.build_model(config)
  update = trainer(model)
  for seed in range(2):
    update(random_batch(config, seed))
  path = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / 'ckpt'))
  expected = update(random_batch(config, 5))

  restored = loop.build_model(config)
  tf.train.Checkpoint(model=restored, optimizer=restored.optimizer).read(path).assert_consumed()
  got = trainer(restored)(random_batch(config, 5))
  assert int(restored.optimizer.iterations) == 3
  for name in ('loss', 'loss_1d', 'loss_2d', 'tau', 'lr'):
    assert float(got[name]) == pytest.approx(float(expected[name]), rel=1e-5), name
