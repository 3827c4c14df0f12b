"""The learning-rate schedule (METHOD.md §5) against numpy."""

import math

import keras
import numpy as np
import pytest

from multisiam_tf.train import schedules

BASE_LR, BATCH, WARMUP, TOTAL = 0.3, 512, 100, 1000
PEAK = BASE_LR * BATCH / 256


def _np_lr(step):
  if step < WARMUP:
    return PEAK * step / WARMUP
  progress = min(step - WARMUP, TOTAL - WARMUP) / (TOTAL - WARMUP)
  return PEAK * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize('step', [0, 1, 50, WARMUP - 1, WARMUP, WARMUP + 1, 550, 777, TOTAL - 1,
                                  TOTAL, TOTAL + 50])
def test_learning_rate(step):
  got = schedules.learning_rate(step, BASE_LR, BATCH, WARMUP, TOTAL).numpy()
  np.testing.assert_allclose(got, _np_lr(step), rtol=1e-5, atol=1e-7)


def test_learning_rate_landmarks():
  lr = lambda step: float(schedules.learning_rate(step, BASE_LR, BATCH, WARMUP, TOTAL))
  assert lr(0) == 0.0
  np.testing.assert_allclose(lr(WARMUP), PEAK, rtol=1e-6)  # the warmup boundary is the peak
  np.testing.assert_allclose(lr((WARMUP + TOTAL) // 2), PEAK / 2, rtol=1e-5)
  np.testing.assert_allclose(lr(TOTAL), 0.0, atol=1e-7)
  assert float(schedules.learning_rate(5, 1.0, 256, 0, 10)) == pytest.approx(
      0.5 * (1 + math.cos(math.pi * 0.5)))  # no warmup


def test_warmup_cosine_is_a_serialisable_keras_schedule():
  schedule = schedules.WarmupCosine(BASE_LR, BATCH, WARMUP, TOTAL)
  for step in (0, WARMUP, 777):
    np.testing.assert_allclose(float(schedule(step)), _np_lr(step), rtol=1e-5)
  restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
  assert isinstance(restored, schedules.WarmupCosine)
  assert restored.get_config() == schedule.get_config()
