"""Every script's --help succeeds and shows what may be set; output to a file has no ANSI codes."""

import glob
import importlib.util
import io
import os
import subprocess
import sys

from multisiam_tf import config as config_lib
from multisiam_tf import progress

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# compare_reference.py needs the optional PyTorch extra (`make torch-reference`).
SCRIPTS = sorted(s for s in glob.glob(os.path.join(ROOT, 'scripts', '*.py'))
                 if importlib.util.find_spec('torch') or not s.endswith('compare_reference.py'))
ANSI = '\x1b'


def test_every_script_help_exits_0_without_ansi_codes_and_pretrain_lists_every_field():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  # All at once: each mostly waits on its imports.
  running = {os.path.basename(s): subprocess.Popen(
      ['nice', '-n', '10', sys.executable, s, '--help'], cwd=ROOT, env=env, text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in SCRIPTS}
  helps = {}
  for name, process in running.items():
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, (name, err[-2000:])
    assert ANSI not in out + err, name
    helps[name] = out
  assert len(helps) >= 12
  for name in config_lib.FIELDS:
    assert f'{name}=' in helps['pretrain.py'], name
  assert '--profile_steps' in helps['pretrain.py']
  assert 'iou_threshold=0.5' in helps['convert_to_tfrecord.py']


def _bar_output(monkeypatch, tty):
  out = io.StringIO()
  out.isatty = lambda: tty
  monkeypatch.setattr(sys, 'stdout', out)
  bar = progress.bar(3, stateful_metrics=['loss'])
  for step in (1, 2, 3):
    bar.update(step, [('loss', 0.5)])
  return out.getvalue()


def test_progress_bar_writes_no_ansi_codes_to_a_file_and_ends_with_the_total_time(monkeypatch):
  to_file = _bar_output(monkeypatch, tty=False)
  assert ANSI not in to_file and to_file.count('\n') == 1  # one plain line, at the end
  assert to_file.startswith('3/3 - 0s - ') and 'loss: 0.5000' in to_file
  assert ANSI in _bar_output(monkeypatch, tty=True)  # a terminal gets Keras' coloured bar


def test_a_bad_config_field_is_a_one_line_error_in_every_script_that_takes_a_config(tmp_path):
  bad = ['--config', os.path.join(ROOT, 'configs', 'demo.py'), '--config.data.iou_threshold=3']
  needed = {'pretrain.py': ['--workdir', str(tmp_path / 'run')],
            'compare_reference.py': ['--out', str(tmp_path / 'peer'), '--train', 'x', '--val', 'y',
                                     '--num_classes', '2']}
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  running = {name: subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'scripts', name)] + bad + needed.get(name, []),
      cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in ('check_data.py', 'inspect_views.py', 'pretrain.py', 'compare_reference.py')
             if os.path.join(ROOT, 'scripts', name) in SCRIPTS}
  for name, process in running.items():
    _, err = process.communicate(timeout=240)
    assert process.returncode == 1, (name, err[-2000:])
    assert 'Traceback' not in err, name
    assert err.strip().splitlines()[-1] == (
        "error: config field 'data.iou_threshold' is 3.0; it must be a number in [0.0, 1.0]"), name
