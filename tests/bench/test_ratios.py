"""bench/train_step.py's summary and ratios on worker results made up here, against numpy."""

import numpy as np
import pytest

from multisiam_tf.bench import train_step

SETTINGS = {'batch': 16, 'depth': 50, 'image_size': 224}


def rounds(rng, n=2, steps=3, **extra):
  """Worker results of `n` rounds: wall and CPU seconds per step."""
  return [{'step_s': list(rng.uniform(4, 9, steps)), 'step_cpu_s': list(rng.uniform(7, 18, steps)),
           'peak_rss_gb': float(rng.uniform(3, 6)), 'device': 'CPU', **extra} for _ in range(n)]


def test_multisiam_vs_byol_is_the_median_of_per_round_ratios_and_a_missing_rate_says_why():
  rng = np.random.default_rng()
  results = {('multisiam', 'float32'): rounds(rng, 3), ('byol', 'float32'): rounds(rng, 3)}
  table, errors = train_step.summarise(results, SETTINGS)
  out = train_step.ratios(table, errors, train_step.matmul_rates(results, ['float32']),
                          ['float32'])
  for clock, key, suffix in (('s', 'step_s', ''), ('cpu_s', 'step_cpu_s', '_per_cpu_s')):
    per_round = [16 / np.median(m[key]) / (16 / np.median(b[key]))
                 for m, b in zip(results['multisiam', 'float32'], results['byol', 'float32'])]
    assert out['multisiam_vs_byol' + suffix]['float32'] == pytest.approx(np.median(per_round))
  assert out['multisiam_matmul_fraction']['float32'] is None
  assert 'bare steps' in out['multisiam_matmul_fraction_reason']['float32']
  assert 'not asked for' in out['bare_vs_torch_reason']['float32']
  assert {k for k in out if not k.endswith('_reason')} == set(train_step.RATIOS)
  assert out['multisiam_bfloat16_vs_float32'] is None
  assert out['multisiam_bfloat16_vs_float32_reason'] == 'needs both precisions'


def test_matmul_fraction_is_against_the_best_framework_rate():
  rng = np.random.default_rng()
  results = {('multisiam', 'bfloat16'): rounds(rng),
             ('bare', 'bfloat16'): rounds(rng, matmul_flop_per_s=150e9),
             ('torch_bare', 'bfloat16'): rounds(rng, matmul_flop_per_s=210e9)}
  table, errors = train_step.summarise(results, SETTINGS)
  rates = train_step.matmul_rates(results, ['bfloat16'])
  assert rates == {'bfloat16': {'tensorflow': 150.0, 'torch': 210.0}}
  out = train_step.ratios(table, errors, rates, ['bfloat16'])
  steps = [s for r in results['multisiam', 'bfloat16'] for s in r['step_s']]
  gflop = train_step.gflop_per_image('multisiam', 50, 224)
  assert out['multisiam_matmul_fraction']['bfloat16'] == pytest.approx(
      16 / np.median(steps) * gflop / 210.0)


def test_a_failed_contender_gives_its_error_as_the_reason():
  rng = np.random.default_rng()
  results = {('multisiam', 'float32'): [{'error': 'out of memory'}],
             ('byol', 'float32'): rounds(rng)}
  table, errors = train_step.summarise(results, SETTINGS)
  out = train_step.ratios(table, errors, {}, ['float32'])
  assert out['multisiam_vs_byol']['float32'] is None
  assert out['multisiam_vs_byol_reason']['float32'] == 'multisiam_float32 did not run: out of memory'
  assert 'out of memory' in out['multisiam_matmul_fraction_reason']['float32']
