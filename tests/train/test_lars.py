"""LARS (METHOD.md §5) against numpy, against Keras SGD, and under distribution / loss scaling."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from multisiam_tf.train import lars as lars_lib
from multisiam_tf.train import schedules

LR, MOMENTUM, WD, ETA = 0.5, 0.9, 1e-2, 1e-3


def _np_lars(weights, grads_per_step, decay, adapt, lrs):
  """Per variable: g += wd w; trust = eta |w| / |g| (1 if a norm is 0); v = m v + lr trust g."""
  weights = [w.astype(np.float64) for w in weights]
  velocities = [np.zeros_like(w) for w in weights]
  for grads, lr in zip(grads_per_step, lrs):
    for n, (w, g) in enumerate(zip(weights, grads)):
      g = g + WD * w if decay[n] else g
      w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
      trust = ETA * w_norm / g_norm if adapt[n] and w_norm > 0 and g_norm > 0 else 1.0
      velocities[n] = MOMENTUM * velocities[n] + lr * trust * g
      weights[n] = w - velocities[n]
  return weights


def _problem(seed, steps=3):
  rng = np.random.default_rng(seed)
  shapes = [(4, 3), (3,), (2, 5), (3, 3)]
  weights = [rng.normal(size=s).astype(np.float32) for s in shapes]
  weights[3][:] = 0.0  # ||w|| = 0: trust falls back to 1
  grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(steps)]
  names = ['enc_kernel', 'enc_bias', 'head_kernel', 'zero_kernel']
  return weights, grads, names


def _run(optimizer, weights, grads, names):
  variables = [keras.Variable(w, name=n) for w, n in zip(weights, names)]
  for step_grads in grads:
    optimizer.apply([tf.constant(g) for g in step_grads], variables)
  return [v.numpy() for v in variables]


def test_lars_matches_numpy_with_excluded_variables():
  weights, grads, names = _problem(0)
  optimizer = lars_lib.LARS(LR, MOMENTUM, WD, ETA, exclude_from_weight_decay=['^head'])
  got = _run(optimizer, weights, grads, names)
  # The bias is 1-D; head_kernel matches the pattern, which also excludes it from adaptation.
  want = _np_lars(weights, grads, decay=[True, False, False, True],
                  adapt=[True, False, False, True], lrs=[LR] * 3)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_lars_separate_adaptation_patterns_and_schedule():
  weights, grads, names = _problem(1)
  schedule = schedules.WarmupCosine(1.0, 256, 2, 10)
  optimizer = lars_lib.LARS(schedule, MOMENTUM, WD, ETA, exclude_from_weight_decay=['enc'],
                            exclude_from_layer_adaptation=['head'])
  got = _run(optimizer, weights, grads, names)
  lrs = [float(schedule(k)) for k in range(3)]  # 0, 0.5, 1.0
  want = _np_lars(weights, grads, decay=[False, False, True, True],
                  adapt=[True, False, False, True], lrs=lrs)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_lars_equals_sgd_momentum_when_everything_is_excluded():
  weights, grads, names = _problem(2, steps=4)
  lars = lars_lib.LARS(LR, MOMENTUM, weight_decay=0.0, exclude_from_weight_decay=['.'])
  # Keras SGD: v = m v - lr g; w += v. The same iterates as v = m v + lr g; w -= v at constant lr.
  sgd = keras.optimizers.SGD(LR, momentum=MOMENTUM)
  for a, b in zip(_run(lars, weights, grads, names), _run(sgd, weights, grads, names)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_lars_config_round_trip():
  optimizer = lars_lib.LARS(schedules.WarmupCosine(1.0, 1024, 10, 100), 0.8, 1e-5, 2e-3,
                            exclude_from_weight_decay=['bn'], exclude_from_layer_adaptation=[])
  restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
  assert isinstance(restored, lars_lib.LARS)
  assert isinstance(restored.learning_rate, tf.Tensor)  # a schedule's current value
  config, restored_config = optimizer.get_config(), restored.get_config()
  config.pop('name'), restored_config.pop('name')
  assert restored_config == config
  assert config['exclude_from_layer_adaptation'] == [] and config['momentum'] == 0.8


_TWO_REPLICAS = """
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from multisiam_tf.train import lars as lars_lib
from tests.train import test_lars as t

weights, grads, names = t._problem(3, steps=2)
# Each replica sees the same gradients, which the optimizer sums across the two replicas.
want = t._run(lars_lib.LARS(t.LR, t.MOMENTUM, t.WD, t.ETA), weights,
              [[2 * g for g in step] for step in grads], names)
strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
with strategy.scope():
  variables = [keras.Variable(w, name=n) for w, n in zip(weights, names)]
  optimizer = keras.optimizers.LossScaleOptimizer(lars_lib.LARS(t.LR, t.MOMENTUM, t.WD, t.ETA))
  optimizer.build(variables)

@tf.function
def step(step_grads):
  # Gradients of the scaled loss, as a mixed-precision train_step produces them.
  scaled = [g * optimizer.dynamic_scale for g in step_grads]
  strategy.run(lambda: optimizer.apply(scaled, variables))

for step_grads in grads:
  step([tf.constant(g) for g in step_grads])
for v, w in zip(variables, want):
  for replica_value in v.value.values:
    np.testing.assert_allclose(replica_value.numpy(), w, rtol=1e-5, atol=1e-7)
print('replicas agree with numpy')
"""


def test_lars_under_mirrored_strategy_and_loss_scaling():
  # Logical devices must be set before TensorFlow initialises them: a fresh interpreter.
  result = subprocess.run([sys.executable, '-c', _TWO_REPLICAS], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).parents[2], timeout=300, check=False)
  assert 'replicas agree with numpy' in result.stdout, result.stderr[-3000:]


def test_lars_trains_a_mixed_precision_model_and_checkpoints(tmp_path):
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32)
  model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, dtype='mixed_float16'),
                            keras.layers.Dense(2, dtype='mixed_float16')])
  optimizer = keras.optimizers.LossScaleOptimizer(lars_lib.LARS(0.1, weight_decay=1e-4))
  model.compile(optimizer=optimizer, loss='mse')
  before = model.get_weights()
  model.fit(x, y, batch_size=8, epochs=1, verbose=0)
  after = model.get_weights()
  assert all(np.all(np.isfinite(w)) for w in after)
  assert all(not np.allclose(a, b) for a, b in zip(before, after))
  checkpoint = tf.train.Checkpoint(optimizer=optimizer)
  path = checkpoint.write(str(tmp_path / 'ckpt'))  # velocities are saved and restored
  saved = [v.numpy() for v in optimizer.inner_optimizer.variables]
  for v in optimizer.inner_optimizer.variables:
    v.assign(tf.zeros_like(v))
  checkpoint.read(path).assert_consumed()
  for v, s in zip(optimizer.inner_optimizer.variables, saved):
    np.testing.assert_array_equal(v.numpy(), s)
