"""The worker side of a contender: time its steps, report them on one line of stdout.

A worker is `python -m multisiam_tf.bench.tf_steps|torch_steps SETTINGS_JSON`; it builds one
contender, runs `warmup` untimed steps (tracing, allocator growth) and `steps` timed ones, times
the matmul rate if asked, and prints the result as one marked JSON line (TF and oneDNN may
write to stdout too). Neither TensorFlow nor torch is imported here.
"""

import contextlib
import json
import os
import resource
import sys
import time

MARK = '@@benchmark '


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
  return usage.ru_utime + usage.ru_stime


def timed_steps(step, warmup, steps):
  """(wall seconds, CPU seconds) of each of `steps` calls of `step()` (which returns once its
  work is done), after `warmup` untimed calls."""
  for _ in range(warmup):
    step()
  wall, cpu = [], []
  for _ in range(steps):
    start, start_cpu = time.perf_counter(), _cpu_seconds()
    step()
    wall.append(time.perf_counter() - start)
    cpu.append(_cpu_seconds() - start_cpu)
  return wall, cpu


def peak_rss_gb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: kilobytes


def main(build, trace=None):
  """Runs the worker whose `build(settings)` returns (step, matmul_rate, device); with
  settings['profile'] (a folder) and a `trace`, the timed steps run inside
  `trace(folder/CONTENDER_PRECISION)`."""
  settings = json.loads(sys.argv[1])
  step, matmul_rate, device = build(settings)
  folder = os.path.join(settings.get('profile') or '', '{contender}_{precision}'.format(**settings))
  with trace(folder) if settings.get('profile') and trace else contextlib.nullcontext():
    wall, cpu = timed_steps(step, settings['warmup'], settings['steps'])
  result = {'step_s': wall, 'step_cpu_s': cpu, 'peak_rss_gb': peak_rss_gb(), 'device': device}
  if settings.get('matmul'):
    result['matmul_flop_per_s'] = matmul_rate(settings['matmul'])
  print(MARK + json.dumps(result), flush=True)


def parse(stdout):
  """The result a worker printed."""
  lines = [line for line in stdout.splitlines() if line.startswith(MARK)]
  if not lines:
    raise RuntimeError('the worker printed no result')
  return json.loads(lines[-1][len(MARK):])
