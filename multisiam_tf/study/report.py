"""A study's results: scores over seeds as mean and std per row, study.json and study.md.

Rows keep the paper's order within their tables; each table's first row is what the differences
are taken against, as in the paper's tables. The random init of the same architecture is the
level every pretrained row must beat (the paper's: Table 1, Random Init).
"""

import json
import os

import numpy as np

from multisiam_tf.study import runs as runs_lib

KIND_NAMES = {'finetune': 'fine-tuned', 'probe': 'linear probe'}


def summarise(values):
  """Values with their mean and sample standard deviation (n - 1; 0 for one value)."""
  v = np.asarray(values, np.float64)
  return {'values': [float(x) for x in v], 'n': len(v),
          'mean': float(v.mean()) if len(v) else None,
          'std': float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def _entry(name, run_name, steps, seeds, scores, kinds, paper_miou):
  entry = {'name': name, 'run': run_name, 'paper_miou': paper_miou}
  for kind in kinds:
    curve = []
    for step in steps:
      values = [scores[k] for k in ((run_name, s, kind, step) for s in seeds) if k in scores]
      if values:
        curve.append({'step': step, **summarise(values)})
    final = curve[-1] if curve and curve[-1]['step'] == steps[-1] else summarise([])
    entry[kind] = {**{k: v for k, v in final.items() if k != 'step'}, 'curve': curve}
  return entry


def aggregate(plan, selected, scores, kinds, paper_miou, titles, random_init_miou=None, **about):
  """The study record: each table's rows (mean and std over seeds of the last step's mIoU, the
  learning curve over evaluation steps, the paper's number), the random init, the runs.

  Args:
    plan: the runs.Plan. selected: row names in the paper's order. scores: {(run name, seed,
    kind, step): mIoU}. kinds: evaluation kinds. paper_miou: {row name: the paper's mIoU}.
    titles: {table: title}. random_init_miou: the paper's random-init number. about: recorded
    as given (scale, data, options).
  """
  seeds = [b.seed for b in plan.baselines]
  steps = {run.name: run.eval_steps for run in plan.runs}
  tables = {}
  for name in selected:
    table = name.partition('/')[0]
    run_name = plan.run_of[name]
    tables.setdefault(table, []).append(
        _entry(name, run_name, steps[run_name], seeds, scores, kinds, paper_miou.get(name)))
  return {
      'about': about, 'seeds': seeds, 'kinds': list(kinds),
      'tables': [{'name': t, 'title': titles.get(t, t), 'rows': r} for t, r in tables.items()],
      'random_init': _entry('random init', runs_lib.BASELINE, (0,), seeds, scores, kinds,
                            random_init_miou),
      'runs': [{'name': r.name, 'seed': r.seed, 'workdir': r.workdir,
                'steps': r.config.train.steps, 'command': list(r.command)} for r in plan.runs],
  }


def _percent(summary):
  if summary['mean'] is None:
    return '-'
  if summary['n'] == 1:  # no spread to show
    return f'{100 * summary["mean"]:.1f}'
  return f'{100 * summary["mean"]:.1f} ± {100 * summary["std"]:.1f}'


def _difference(value, first, scale=100.0):
  return '' if value is None or first is None else f'{scale * (value - first):+.1f}'


def markdown(study):
  """study.md: per table, mean ± std over seeds beside the paper's number, differences to the
  table's first row; then the learning curves."""
  about = study['about']
  kinds = study['kinds']
  lines = ['# Study', '', f'Seeds {", ".join(map(str, study["seeds"]))}; '
           + '; '.join(f'{k} {json.dumps(v)}' for k, v in about.items()) + '.', '',
           'mIoU (%) on the evaluation val folder, mean ± sample std over seeds, at the end of '
           'pretraining; Δ: against the table\'s first row. Paper: Cityscapes val mIoU of the '
           'paper\'s runs (Detectron2 FCN-16s fine-tuning).', '']
  header = ['row'] + [h for k in kinds for h in (KIND_NAMES[k], 'Δ')] + ['paper', 'Δ', 'run']
  for table in study['tables']:
    first = table['rows'][0]
    lines += [f'## {table["title"]}', '', '| ' + ' | '.join(header) + ' |',
              '|' + '|'.join(['---'] + ['---:'] * (len(header) - 2) + ['---']) + '|']
    for entry in table['rows'] + [study['random_init']]:
      cells = [entry['name'].partition('/')[2] or entry['name']]
      against = None if entry is first else first
      for kind in kinds:
        cells += [_percent(entry[kind]),
                  _difference(entry[kind]['mean'], against and against[kind]['mean'])]
      paper = entry['paper_miou']
      shared = entry['run'] not in (entry['name'], runs_lib.BASELINE)
      cells += ['-' if paper is None else f'{paper:.1f}',
                _difference(paper, against and against['paper_miou'], 1.0),
                f'same run as {entry["run"]}' if shared else '']
      lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
  # of the evaluations run at more than one step
  lines += ['## Learning curves', '', 'mIoU (%) by pretraining step, mean over seeds.', '']
  for table in study['tables']:
    for kind in kinds:
      steps = sorted({p['step'] for e in table['rows'] for p in e[kind]['curve']})
      if len(steps) < 2:
        continue
      lines += [f'{table["title"]}, {KIND_NAMES[kind]}:', '',
                '| row | ' + ' | '.join(map(str, steps)) + ' |',
                '|---|' + '---:|' * len(steps)]
      for entry in table['rows']:
        at = {p['step']: f'{100 * p["mean"]:.1f}' for p in entry[kind]['curve']}
        lines.append(f'| {entry["name"].partition("/")[2]} | '
                     + ' | '.join(at.get(s, '-') for s in steps) + ' |')
      lines.append('')
  return '\n'.join(lines)


def write(study, out):
  """study.json and study.md in `out`; returns their paths."""
  paths = os.path.join(out, 'study.json'), os.path.join(out, 'study.md')
  with open(paths[0], 'w') as f:
    json.dump(study, f, indent=2)
  with open(paths[1], 'w') as f:
    f.write(markdown(study))
  return paths
