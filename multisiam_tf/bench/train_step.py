"""Rounds of contender workers and the figures they give (scripts/benchmark.py --what train_step).

Every contender of every precision runs in a fresh worker process per round (worker.py), so its
peak RSS is its own; the order of the contenders reverses every other round, so that drifting
load on a shared machine falls on all of them alike. Ratios are medians over rounds of each
round's ratio, contenders measured side by side.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

from multisiam_tf.bench import worker

CONTENDERS = {  # name: worker module
    'multisiam': 'multisiam_tf.bench.tf_steps', 'byol': 'multisiam_tf.bench.tf_steps',
    'bare': 'multisiam_tf.bench.tf_steps', 'torch_bare': 'multisiam_tf.bench.torch_steps'}
PRECISIONS = ('float32', 'bfloat16')
# GFLOP per training image, ResNet-50 at 224 px (the counts), multiply-add = 2 FLOP.
GFLOP_PER_IMAGE = {'multisiam': 74.0, 'bare': 66.0, 'torch_bare': 66.0}
_FORWARD_GMAC = {18: 1.82, 34: 3.67, 50: 4.11, 101: 7.83}  # 224 px forward of each depth


def gflop_per_image(contender, depth, image_size):
  """The count above scaled to other depths and view sizes by the backbone's forward cost."""
  if contender not in GFLOP_PER_IMAGE:
    return None
  return GFLOP_PER_IMAGE[contender] * _FORWARD_GMAC[depth] / _FORWARD_GMAC[50] * (
      image_size / 224) ** 2


def run_worker(contender, precision, settings, timeout):
  """One worker's result, or {'error': why} when it could not run."""
  if contender == 'torch_bare' and importlib.util.find_spec('torch') is None:
    return {'error': 'torch is not installed (make bench-deps)'}
  args = dict(settings, contender=contender, precision=precision)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  try:
    done = subprocess.run([sys.executable, '-m', CONTENDERS[contender], json.dumps(args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
  except subprocess.TimeoutExpired:
    return {'error': f'timed out after {timeout} s'}
  if done.returncode:
    return {'error': f'exit {done.returncode}: ' + done.stderr.strip()[-400:]}
  return worker.parse(done.stdout)


def run_rounds(contenders, precisions, settings, rounds, timeout, log=print):
  """{(contender, precision): [result of each round]}."""
  results = {(c, p): [] for p in precisions for c in contenders}
  for r in range(rounds):
    order = contenders if r % 2 == 0 else contenders[::-1]
    for precision in precisions:
      for contender in order:
        result = run_worker(contender, precision, settings, timeout)
        log(f'round {r + 1}/{rounds} {contender} {precision}: '
            + (result.get('error') or ' '.join(f'{s:.2f}' for s in result['step_s']) + ' s, CPU '
               + ' '.join(f'{s:.2f}' for s in result['step_cpu_s']) + ' s'))
        results[(contender, precision)].append(result)
  return results


def _name(contender, precision):
  return f'{contender}_{precision}'


def summarise(results, settings):
  """{NAME: figures} of every contender that ran, and the errors of those that did not."""
  table, errors = {}, {}
  for (contender, precision), rounds in results.items():
    failed = [r['error'] for r in rounds if 'error' in r]
    if failed:
      errors[(contender, precision)] = failed[0]
      continue
    entry = {'peak_rss_gb': max(r['peak_rss_gb'] for r in rounds), 'precision': precision,
             'device': rounds[0]['device']}
    for clock, key in (('s', 'step_s'), ('cpu_s', 'step_cpu_s')):
      steps = [s for r in rounds for s in r[key]]
      entry.update({f'img_per_{clock}': settings['batch'] / float(np.median(steps)),
                    f'median_{key}': float(np.median(steps)), key: steps,
                    f'img_per_{clock}_by_round': [settings['batch'] / float(np.median(r[key]))
                                                  for r in rounds]})
    gflop = gflop_per_image(contender, settings['depth'], settings['image_size'])
    if gflop:
      entry['gflop_per_s'] = entry['img_per_s'] * gflop
    table[_name(contender, precision)] = entry
  return table, errors


def matmul_rates(results, precisions):
  """{precision: {framework: GFLOP/s}}: the best matmul rate of each framework's worker."""
  rates = {}
  for precision in precisions:
    rates[precision] = {}
    for framework, contender in (('tensorflow', 'bare'), ('torch', 'torch_bare')):
      measured = [r['matmul_flop_per_s'] for r in results.get((contender, precision), [])
                  if 'matmul_flop_per_s' in r]
      if measured:
        rates[precision][framework] = max(measured) / 1e9
  return rates


def _paired(table, errors, numerator, denominator, clock='s'):
  """Median over rounds of the images/s (clock 's') or images per CPU-second ('cpu_s') ratio of
  two NAMEs, or (None, why not)."""
  missing = [n for n in (numerator, denominator) if n not in table]
  if missing:
    return None, '; '.join(f'{n} did not run: {errors.get(n, "not asked for")}' for n in missing)
  key = f'img_per_{clock}_by_round'
  by_round = zip(table[numerator][key], table[denominator][key])
  return float(np.median([a / b for a, b in by_round])), None


def _matmul_fraction(table, errors, rates, precision):
  name = _name('multisiam', precision)
  if name not in table:
    return None, f'{name} did not run: {errors.get(name, "not asked for")}'
  if not rates.get(precision):
    return None, (f'the matmul rate in {precision} is measured by the bare steps\' workers '
                  '(bare, torch_bare), and neither ran')
  return table[name]['gflop_per_s'] / max(rates[precision].values()), None


def _versus_torch(table, errors, precision, clock='s'):
  bare = table.get(_name('bare', precision))
  if bare and bare['device'] != 'CPU':
    return None, f'TensorFlow ran on {bare["device"]}; the torch reference runs on the CPU only'
  return _paired(table, errors, _name('bare', precision), _name('torch_bare', precision), clock)


_CLOCKS = (('s', ''), ('cpu_s', '_per_cpu_s'))
# Every ratio `ratios` reports, measured or null.
RATIOS = ('multisiam_matmul_fraction',) + tuple(
    name + suffix
    for name in ('multisiam_vs_byol', 'bare_vs_torch', 'multisiam_bfloat16_vs_float32')
    for _, suffix in _CLOCKS)


def ratios(table, errors, rates, precisions):
  """The train_step ratios (RATIOS), each {precision: value} but the bfloat16 / float32 one; a
  null value's reason under NAME_reason. NAME_per_cpu_s: the same ratio of images per
  CPU-second, which other jobs on a shared machine disturb far less than wall time."""
  errors = {_name(*key): why for key, why in errors.items()}
  measures = {'multisiam_matmul_fraction': lambda p: _matmul_fraction(table, errors, rates, p)}
  for clock, suffix in _CLOCKS:
    measures['multisiam_vs_byol' + suffix] = (
        lambda p, c=clock: _paired(table, errors, _name('multisiam', p), _name('byol', p), c))
    measures['bare_vs_torch' + suffix] = lambda p, c=clock: _versus_torch(table, errors, p, c)
  out = {}
  for name, measure in measures.items():
    values = {p: measure(p) for p in precisions}
    out[name] = {p: value for p, (value, _) in values.items()}
    reasons = {p: why for p, (_, why) in values.items() if why}
    if reasons:
      out[name + '_reason'] = reasons
  for clock, suffix in _CLOCKS:
    value, why = (_paired(table, errors, 'multisiam_bfloat16', 'multisiam_float32', clock)
                  if set(PRECISIONS) <= set(precisions) else (None, 'needs both precisions'))
    out['multisiam_bfloat16_vs_float32' + suffix] = value
    if why:
      out[f'multisiam_bfloat16_vs_float32{suffix}_reason'] = why
  return out
