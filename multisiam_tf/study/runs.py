"""A study's runs: rows x seeds as pretraining runs, one per distinct config; their state.

A row is a named config (one row of a paper table at one scale). A run pretrains one config with
one seed in `out/<row>/seed<k>`, a normal workdir that scripts/pretrain.py resumes. Rows whose
configs are equal but for bookkeeping are one run, named after the first of them in the order
of all rows, so studies of different tables in one `out` share it. A random-init baseline per
seed (`out/random_init/seed<k>`) has no command: it is only evaluated.
"""

import ast
import json
import os
import subprocess
from typing import NamedTuple

import ml_collections

from multisiam_tf import config as config_lib
from multisiam_tf.train import checkpoints

BASELINE = 'random_init'
# Fields that do not change what a run learns.
BOOKKEEPING = ('train.steps_per_loop', 'train.checkpoint_every', 'train.keep_checkpoints',
               'train.log_every', 'train.image_every')


class Row(NamedTuple):
  name: str  # 'table4/offset'
  config_arg: str  # what --config takes: 'configs/paper.py:table4/offset,camvid'
  config: ml_collections.ConfigDict  # that file's config


class Run(NamedTuple):
  name: str  # the first row with this config; BASELINE for a random init
  seed: int
  workdir: str
  config: ml_collections.ConfigDict  # as config.json holds it: seeded, durations in steps
  eval_steps: tuple  # checkpoint steps to evaluate; the last is train.steps (0: a random init)
  command: tuple  # the pretraining command line; () for a random init


class Plan(NamedTuple):
  runs: list  # pretraining runs, seed by seed, each in the order of the rows
  run_of: dict  # row name -> the name of its run
  baselines: list  # one random-init Run per seed


def parse_overrides(items):
  """{'a.b': value} of 'a.b=value' strings (the text after --config.), values as Python
  literals where they parse as one ('4', 'False', '(0.2, 1.0)'), else as strings."""
  overrides = {}
  for item in items:
    key, equals, text = item.partition('=')
    if not equals or not key:
      raise ValueError(f'an override is FIELD=VALUE, got {item!r}')
    try:
      overrides[key] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      overrides[key] = text
  return overrides


flatten = config_lib.flatten


def learning_fields(config):
  """The config as JSON-comparable {field: value}, bookkeeping left out."""
  fields = flatten(json.loads(config.to_json_best_effort()))
  return {k: v for k, v in fields.items() if k not in BOOKKEEPING}


def _same_run_key(config):
  return json.dumps(learning_fields(config), sort_keys=True)


def _eval_steps(steps, eval_every):
  return tuple(range(eval_every, steps, eval_every)) + (steps,) if eval_every else (steps,)


def _validate_rows(rows, selected, changes):
  """(row name -> its validated config with `changes`, same-run key -> the first row's name).

  A row that is not selected and is invalid with `changes` (e.g. K = 5 on a 2x2 map) is left
  out: it can share a run with none that is valid.
  """
  validated, first_with = {}, {}
  for row in rows:
    try:
      config = config_lib.validate(config_lib.override(row.config.copy_and_resolve_references(),
                                                       changes))
    except (config_lib.ConfigError, TypeError, KeyError, AttributeError) as e:
      if row.name not in selected:
        continue
      raise config_lib.ConfigError(f'row {row.name}: {e}') from e
    validated[row.name] = config
    first_with.setdefault(_same_run_key(config), row.name)
  return validated, first_with


def plan(rows, selected, seeds, out, pretrain, overrides=(), eval_every=0):
  """The runs of the `selected` row names x `seeds`.

  Args:
    rows: every Row, in the order that names shared runs (the paper's).
    selected: the names of the rows to run.
    seeds: pretraining (and evaluation) seeds.
    out: the study's folder.
    pretrain: the command that starts scripts/pretrain.py, with any flags of its own.
    overrides: 'field=value' strings applied to every row, as `--config.field=value` would be.
    eval_every: also evaluate every this many steps (its checkpoints are kept); 0: the last only.

  Raises:
    ConfigError naming the selected row whose config is invalid.
  """
  if not seeds:
    raise ValueError('a study needs at least one seed')
  by_name = {row.name: row for row in rows}
  unknown = [name for name in selected if name not in by_name]
  if unknown:
    raise config_lib.ConfigError(f'unknown rows {unknown}; known: {", ".join(by_name)}')
  overrides = list(overrides)
  validated, first_with = _validate_rows(rows, set(selected), parse_overrides(overrides))
  run_of = {name: first_with[_same_run_key(validated[name])] for name in selected}
  names = list(dict.fromkeys(run_of.values()))
  schedules = {name: config_lib.resolve_schedule(validated[name]) for name in names}
  runs = []
  for seed in seeds:
    for name in names:
      steps = schedules[name].train.steps
      extra = {'seed': seed}
      if eval_every:
        extra.update({'train.checkpoint_every': eval_every,
                      'train.keep_checkpoints': len(_eval_steps(steps, eval_every))})
      config = config_lib.override(schedules[name].copy_and_resolve_references(), extra)
      workdir = os.path.join(out, *name.split('/'), f'seed{seed}')
      command = (*pretrain, f'--config={by_name[name].config_arg}', f'--workdir={workdir}',
                 *[f'--config.{o}' for o in overrides],
                 *[f'--config.{k}={v}' for k, v in extra.items()])
      runs.append(Run(name, seed, workdir, config, _eval_steps(steps, eval_every), command))
  backbones = {json.dumps(flatten(run.config.model.backbone), sort_keys=True) for run in runs}
  if len(backbones) > 1:
    raise config_lib.ConfigError(f'the rows differ in model.backbone ({sorted(backbones)}); a '
                                 'study compares one architecture with one random init')
  baselines = [Run(BASELINE, seed, os.path.join(out, BASELINE, f'seed{seed}'), runs[0].config,
                   (0,), ()) for seed in seeds]
  return Plan(runs, run_of, baselines)


def checkpoint_exists(run, step):
  return os.path.exists(os.path.join(run.workdir, checkpoints.CHECKPOINTS, f'ckpt-{step}.index'))


def finished(run):
  return checkpoint_exists(run, run.config.train.steps)


def check_workdir(run):
  """Raises ValueError if the run's workdir holds a run of another config (another scale, say)."""
  if not os.path.exists(os.path.join(run.workdir, checkpoints.CONFIG)):
    return
  written = learning_fields(checkpoints.read_config(run.workdir))
  planned = learning_fields(run.config)
  differ = sorted(k for k in written.keys() | planned.keys() if written.get(k) != planned.get(k))
  if differ:
    details = ', '.join(f'{k}: {written.get(k)!r} there, {planned.get(k)!r} here' for k in differ)
    raise ValueError(f'{run.workdir} holds a run of another config ({details}); choose another '
                     'study folder')


def pending(runs):
  """The runs not yet finished, their workdirs checked."""
  for run in runs:
    check_workdir(run)
  return [run for run in runs if not finished(run)]


def pretrain(run):
  """Runs (or resumes) the run's pretraining, its output appended to <workdir>/pretrain.log."""
  os.makedirs(run.workdir, exist_ok=True)
  log = os.path.join(run.workdir, 'pretrain.log')
  with open(log, 'a') as f:
    code = subprocess.run(run.command, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
  if code:
    with open(log) as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f'pretraining of {run.workdir} failed (exit {code}), log {log}:\n{tail}')
