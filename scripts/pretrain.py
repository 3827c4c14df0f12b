r"""Pretrains MultiSiam; restarted on the same workdir it resumes from the newest checkpoint.

  python scripts/pretrain.py --config configs/demo.py --workdir runs/demo \
      [--config.train.batch_size=32] [--config.train.steps=4] \
      [--strategy auto|default|mirrored|multi_worker|tpu] [--tpu ADDRESS] \
      [--profile_steps=START,END]
  python scripts/pretrain.py --config runs/demo/config.json --workdir runs/demo_again

`--help` lists every config field an override may set, with its default and rule.

The schedule follows the final config: durations in epochs become steps at start (logged, and
written to the workdir's config.json with what the run resolved; that file as --config runs it
again). Multi-worker: run the same command on every worker, each with its TF_CONFIG, and a
workdir all of them can reach. Exit codes: 0 finished (or already complete), 42 preempted
(SIGTERM: a checkpoint was saved; restart to resume), 1 error.
"""

import sys

from absl import app
from absl import flags

from multisiam_tf import cli
from multisiam_tf import config as config_lib
from multisiam_tf.eval import online
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import summaries
from multisiam_tf.train import workdir_lock

_CONFIG = config_lib.define_config_flag('config')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the run: config, checkpoints, logs.')
_STRATEGY = flags.DEFINE_enum('strategy', 'auto', distribute.STRATEGIES, 'tf.distribute strategy.')
_TPU = flags.DEFINE_string('tpu', '', 'TPU name or grpc:// address; empty: this TPU VM.')
_PROFILE_STEPS = flags.DEFINE_list(
    'profile_steps', [], 'START,END: a profiler trace of the updates after step START up to END, '
    'in WORKDIR/profile/ (TensorBoard shows it with `pip install -e .[profile]`).')
flags.mark_flags_as_required(['config', 'workdir'])
flags.register_validator('profile_steps', lambda v: not v or (
    len(v) == 2 and all(s.isdigit() for s in v) and int(v[0]) < int(v[1])),
                         message='--profile_steps takes START,END with 0 <= START < END')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  profiler = None
  try:
    config = config_lib.from_flag(_CONFIG)
    strategy = distribute.make_strategy(_STRATEGY.value, _TPU.value)
    profiler = summaries.Profiler([int(s) for s in _PROFILE_STEPS.value], _WORKDIR.value)
    loop.train(config, _WORKDIR.value, strategy,
               online.hooks(config, distribute.is_chief(strategy)) + [profiler])
  except (config_lib.ConfigError, workdir_lock.WorkdirLocked) as e:
    sys.exit(f'error: {e}')
  except loop.Preempted as e:
    print(f'{e}; exit code {loop.PREEMPTED_EXIT_CODE}: restart on this workdir to resume')
    sys.exit(loop.PREEMPTED_EXIT_CODE)
  finally:
    if profiler:
      profiler.stop()

if __name__ == '__main__':
  cli.run(main)
