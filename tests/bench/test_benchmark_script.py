"""scripts/benchmark.py --what train_step --quick on a tiny setting: the JSON has the issue's shape.

Two contenders only (each worker imports TensorFlow and traces its step): the ratios whose
reference did not run must then be null with a reason.
"""

import json
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'benchmark.py')


def test_train_step_json_shape(tmp_path):
  out = tmp_path / 'bench.json'
  subprocess.run([sys.executable, SCRIPT, '--what', 'train_step', '--quick', '--image_size', '32',
                  '--train_batch', '2', '--precisions', 'float32', '--warmup_steps', '1',
                  '--contenders', 'multisiam,bare', '--matmul_size', '64', '--json', str(out)],
                 check=True, timeout=300)
  report = json.loads(out.read_text())
  assert set(report) == {'machine', 'train_step', 'input', 'ratios'}
  assert {'cpu', 'avx512_bf16', 'amx_bf16', 'cores', 'tensorflow', 'torch', 'device'} <= set(
      report['machine'])
  assert set(report['train_step']) == {'multisiam_float32', 'bare_float32'}
  for entry in report['train_step'].values():
    assert entry['img_per_s'] > 0 and entry['peak_rss_gb'] > 0
    assert entry['precision'] == 'float32' and len(entry['step_s']) == 3
    assert entry['img_per_cpu_s'] > 0
  ratios = report['ratios']
  assert ratios['multisiam_matmul_fraction']['float32'] > 0  # a 64 x 64 matmul runs far below peak
  for name in ('multisiam_vs_byol', 'bare_vs_torch', 'bare_vs_torch_per_cpu_s'):
    assert ratios[name]['float32'] is None and 'did not run' in ratios[name + '_reason']['float32']
  assert ratios['input_vs_pil'] is None and ratios['input_vs_pil_reason']
