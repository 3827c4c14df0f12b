"""The study's tables: mean and std over seeds against numpy, study.md's rows, study.png."""

import numpy as np
from PIL import Image
import pytest

from multisiam_tf import config as config_lib
from multisiam_tf.study import figure
from multisiam_tf.study import report
from multisiam_tf.study import runs

SEEDS = (0, 1, 2)
KINDS = ('finetune', 'probe')
PAPER = {'table4/byol': 67.2, 'table4/cluster': 70.0, 'table2a/iou_0.5': 70.0}


@pytest.fixture
def plan(tiny_config):
  config = config_lib.resolve_schedule(tiny_config())
  def run(name, seed, steps):
    return runs.Run(name, seed, f'/s/{name}/seed{seed}', config, steps, ('pretrain',))
  return runs.Plan(
      [run(name, seed, (2, 4)) for seed in SEEDS for name in ('table2a/iou_0.5', 'table4/byol')],
      {'table2a/iou_0.5': 'table2a/iou_0.5', 'table4/byol': 'table4/byol',
       'table4/cluster': 'table2a/iou_0.5'},
      [runs.Run(runs.BASELINE, seed, f'/s/random_init/seed{seed}', config, (0,), ())
       for seed in SEEDS])


@pytest.fixture
def scores():
  rng = np.random.default_rng(0)
  out = {}
  for seed in SEEDS:
    for kind in KINDS:
      out[runs.BASELINE, seed, kind, 0] = rng.uniform(0.1, 0.3)
      for name in ('table2a/iou_0.5', 'table4/byol'):
        for step in (2, 4):
          out[name, seed, kind, step] = rng.uniform(0.2, 0.6)
  return out


@pytest.fixture
def study(plan, scores):
  return report.aggregate(plan, ['table2a/iou_0.5', 'table4/byol', 'table4/cluster'], scores,
                          KINDS, PAPER, {'table4': 'Table 4: components'}, 65.3, scale='tiny')


def test_mean_and_std_over_seeds_match_numpy(study, scores):
  table2a, table4 = study['tables']
  assert [t['name'] for t in study['tables']] == ['table2a', 'table4']
  assert (table2a['title'], table4['title']) == ('table2a', 'Table 4: components')
  assert [r['name'] for r in table4['rows']] == ['table4/byol', 'table4/cluster']
  byol, cluster = table4['rows']
  for entry, run in ((byol, 'table4/byol'), (cluster, 'table2a/iou_0.5'),
                     (table2a['rows'][0], 'table2a/iou_0.5')):
    assert entry['run'] == run
    for kind in KINDS:
      values = np.array([scores[run, s, kind, 4] for s in SEEDS])
      assert entry[kind]['values'] == pytest.approx(list(values))
      assert entry[kind]['mean'] == pytest.approx(np.mean(values))
      assert entry[kind]['std'] == pytest.approx(np.std(values, ddof=1))
      assert [p['step'] for p in entry[kind]['curve']] == [2, 4]
      early = np.array([scores[run, s, kind, 2] for s in SEEDS])
      assert entry[kind]['curve'][0]['mean'] == pytest.approx(np.mean(early))
  baseline = study['random_init']
  assert baseline['paper_miou'] == 65.3
  values = [scores[runs.BASELINE, s, 'probe', 0] for s in SEEDS]
  assert baseline['probe']['mean'] == pytest.approx(np.mean(values))
  assert baseline['probe']['std'] == pytest.approx(np.std(values, ddof=1))
  assert cluster['paper_miou'] == 70.0 and study['about'] == {'scale': 'tiny'}


def test_a_single_seed_has_std_zero_and_a_missing_last_step_no_mean(plan, scores):
  assert report.summarise([0.25]) == {'values': [0.25], 'n': 1, 'mean': 0.25, 'std': 0.0}
  assert report.summarise([])['mean'] is None
  one_seed = {k: v for k, v in scores.items() if k[1] == 0 and k[3] != 4}  # no step 4
  study = report.aggregate(plan, ['table4/byol'], one_seed, KINDS, PAPER, {}, 65.3)
  (byol,) = study['tables'][0]['rows']
  assert byol['probe']['mean'] is None and byol['probe']['curve'][0]['n'] == 1
  assert '| byol | - |  | - |' in report.markdown(study)
  assert f'| random init | {100 * scores["random_init", 0, "finetune", 0]:.1f} |' in (
      report.markdown(study))


def test_markdown_rows_numbers_and_differences(study, scores):
  text = report.markdown(study)
  lines = text.split('\n')
  byol = next(line for line in lines if line.startswith('| byol |'))
  cluster = next(line for line in lines if line.startswith('| cluster |'))
  mean = np.mean([scores['table4/byol', s, 'finetune', 4] for s in SEEDS])
  std = np.std([scores['table4/byol', s, 'finetune', 4] for s in SEEDS], ddof=1)
  assert byol.startswith(f'| byol | {100 * mean:.1f} ± {100 * std:.1f} |  |')
  assert '| 67.2 |  |' in byol
  difference = np.mean([scores['table2a/iou_0.5', s, 'probe', 4] - scores['table4/byol', s,
                                                                           'probe', 4]
                        for s in SEEDS])
  cells = [c.strip() for c in cluster.split('|')]
  assert cells[5] == f'{100 * difference:+.1f}'
  assert cells[6:9] == ['70.0', '+2.8', 'same run as table2a/iou_0.5']
  assert lines.index('## Table 4: components') > lines.index('## table2a')
  assert sum(line.startswith('| random init |') for line in lines) == 2


def test_figure_draws_every_table(study, tmp_path):
  path = str(tmp_path / 'study.png')
  figure.draw(study, path)
  image = np.asarray(Image.open(path).convert('RGB'))
  assert image.shape == (2 * figure.PANEL_HEIGHT, figure.BARS_WIDTH + figure.CURVES_WIDTH, 3)
  for colour in figure.KIND_COLOURS.values():
    for half in (image[:figure.PANEL_HEIGHT], image[figure.PANEL_HEIGHT:]):
      assert np.all(half == colour, axis=-1).sum() > 500  # bars of both kinds in both panels
