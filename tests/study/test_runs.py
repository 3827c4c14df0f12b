"""The study's plan: one run per distinct config and seed, its workdir, command and state."""

import json
import os

import pytest

from multisiam_tf import config as config_lib
from multisiam_tf.study import runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
paper = config_lib.load(os.path.join(ROOT, 'configs', 'paper.py'))
PRETRAIN = ('python', 'scripts/pretrain.py', '--strategy=default')


def paper_rows(scale='small'):
  return [runs.Row(name, f'configs/paper.py:{name},{scale}', paper.get_config(f'{name},{scale}'))
          for name in paper.PAPER_MIOU]


def make_plan(out, selected, seeds=(0, 1), overrides=('data.path=/data/x',), **kwargs):
  return runs.plan(paper_rows(), selected, seeds, out, PRETRAIN, overrides, **kwargs)


def test_rows_of_one_config_share_a_run_named_after_the_papers_first_row(tmp_path):
  selected = ['table4/byol', 'table4/cluster', 'table4/attention', 'table9/roi',
              'table2a/iou_0.5']
  plan = make_plan(str(tmp_path), selected)
  # At the small scale Table 1's schedule is the ablation's: table4/byol is table1/byol's run.
  assert plan.run_of == {'table4/byol': 'table1/byol', 'table4/cluster': 'table2a/iou_0.5',
                         'table4/attention': 'table4/attention',
                         'table9/roi': 'table4/attention', 'table2a/iou_0.5': 'table2a/iou_0.5'}
  assert [(r.name, r.seed) for r in plan.runs] == [
      (n, s) for s in (0, 1) for n in ('table1/byol', 'table2a/iou_0.5', 'table4/attention')]
  assert plan.runs[1].workdir == os.path.join(str(tmp_path), 'table2a', 'iou_0.5', 'seed0')
  assert [(b.name, b.seed, b.workdir, b.eval_steps, b.command) for b in plan.baselines] == [
      ('random_init', s, os.path.join(str(tmp_path), 'random_init', f'seed{s}'), (0,), ())
      for s in (0, 1)]


def test_run_command_config_and_evaluation_steps(tmp_path):
  plan = make_plan(str(tmp_path), ['table8/scale_0.2'], seeds=(3,), eval_every=120)
  (run,) = plan.runs
  workdir = os.path.join(str(tmp_path), 'table8', 'scale_0.2', 'seed3')
  assert run.command == (
      *PRETRAIN, '--config=configs/paper.py:table8/scale_0.2,small', f'--workdir={workdir}',
      '--config.data.path=/data/x', '--config.seed=3', '--config.train.checkpoint_every=120',
      '--config.train.keep_checkpoints=3')
  assert run.eval_steps == (120, 240, 300)  # and the last step, 300 in the small scale
  c = run.config
  assert (c.seed, c.train.steps, tuple(c.data.area_range), c.data.path) == (3, 300, (0.2, 1.0),
                                                                    '/data/x')
  assert (c.train.checkpoint_every, c.train.keep_checkpoints) == (120, 3)
  (default,) = make_plan(str(tmp_path), ['table8/scale_0.2'], seeds=(3,)).runs
  assert default.eval_steps == (300,)
  assert default.command[-1] == '--config.seed=3'


def test_bookkeeping_fields_do_not_split_runs_but_learning_fields_do(tiny_config, tmp_path):
  base = tiny_config()
  rows = [runs.Row('a/one', 'tiny', base),
          runs.Row('a/logs', 'tiny', config_lib.override(base.copy_and_resolve_references(),
                                                          {'train.log_every': 3,
                                                           'train.checkpoint_every': 5})),
          runs.Row('a/lr', 'tiny', config_lib.override(base.copy_and_resolve_references(),
                                                        {'optim.base_lr': 2.0}))]
  plan = runs.plan(rows, ['a/lr', 'a/logs', 'a/one'], [0], str(tmp_path), PRETRAIN)
  assert plan.run_of == {'a/lr': 'a/lr', 'a/logs': 'a/one', 'a/one': 'a/one'}


def test_overrides_reach_every_row_and_a_bad_one_names_the_row(tmp_path):
  plan = make_plan(str(tmp_path), ['table4/byol'], seeds=(0,),
                   overrides=('data.path=/d', 'train.steps=7', 'data.area_range=(0.3, 1.0)'))
  c = plan.runs[0].config
  assert (c.train.steps, tuple(c.data.area_range)) == (7, (0.3, 1.0))
  with pytest.raises(config_lib.ConfigError, match=r"row table4/byol: .*'model.kmeans.k' is 0"):
    make_plan(str(tmp_path), ['table4/byol'], overrides=('model.kmeans.k=0',))
  with pytest.raises(config_lib.ConfigError, match='row table4/byol'):
    make_plan(str(tmp_path), ['table4/byol'], overrides=('model.nope=1',))


def test_parse_overrides_reads_literals_else_strings():
  assert runs.parse_overrides(['a=4', 'b=False', 'c=(0.2, 1.0)', 'd=/data/*.tfrecord', 'e=x']) == {
      'a': 4, 'b': False, 'c': (0.2, 1.0), 'd': '/data/*.tfrecord', 'e': 'x'}
  with pytest.raises(ValueError, match="FIELD=VALUE, got 'a'"):
    runs.parse_overrides(['a'])


def test_rows_of_different_backbones_are_refused(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='differ in model.backbone'):
    runs.plan(paper_rows('small') + [runs.Row('x/r50', 'x', paper.get_config('table4/byol'))],
              ['table4/byol', 'x/r50'], [0], str(tmp_path), PRETRAIN, ['data.path=/d'])


def write_checkpoint(run, step):
  directory = os.path.join(run.workdir, 'checkpoints')
  os.makedirs(directory, exist_ok=True)
  open(os.path.join(directory, f'ckpt-{step}.index'), 'w').close()


def write_config(run, **changes):
  os.makedirs(run.workdir, exist_ok=True)
  c = config_lib.override(run.config.copy_and_resolve_references(), changes)
  with open(os.path.join(run.workdir, 'config.json'), 'w') as f:
    f.write(c.to_json_best_effort(indent=2))


def test_pending_skips_finished_runs_and_refuses_a_workdir_of_another_config(tmp_path):
  plan = make_plan(str(tmp_path), ['table4/byol', 'table4/offset'], seeds=(0,))
  byol, offset = plan.runs
  assert runs.pending(plan.runs) == [byol, offset]
  write_config(byol, **{'train.log_every': 7})  # bookkeeping: still this run
  write_checkpoint(byol, 200)
  assert runs.pending(plan.runs) == [byol, offset]
  write_checkpoint(byol, 300)
  assert runs.finished(byol) and runs.pending(plan.runs) == [offset]
  write_config(offset, **{'optim.base_lr': 0.5})
  with pytest.raises(ValueError, match=r'holds a run of another config \(optim.base_lr: 0.5 '
                                       r'there, 0.008 here\)'):
    runs.pending(plan.runs)


def test_config_json_of_a_run_matches_its_plan(tmp_path):
  (run,) = make_plan(str(tmp_path), ['table2b/none'], seeds=(0,)).runs
  write_config(run)
  with open(os.path.join(run.workdir, 'config.json')) as f:
    assert runs.flatten(json.load(f))['model.alignment'] == 'none'
  runs.check_workdir(run)
