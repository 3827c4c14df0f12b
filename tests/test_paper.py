"""configs/paper.py: every row of the paper's tables on its table's base, with its number."""

import os

import ml_collections
import pytest

from multisiam_tf import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
paper = config_lib.load(os.path.join(ROOT, 'configs', 'paper.py'))
waymo = config_lib.load(os.path.join(ROOT, 'configs', 'multisiam_waymo.py'))

ROI_CLUSTER = {'model.alignment': 'roi', 'model.attention.enabled': False}
# Each table's base against the full model of its schedule (METHOD.md section 6).
BASES = {
    'table1': ('', {}),
    'table2a': ('ablation', ROI_CLUSTER), 'table2b': ('ablation', ROI_CLUSTER),
    'table3': ('ablation', ROI_CLUSTER),
    'table4': ('ablation', {}), 'table8': ('ablation', {}), 'table9': ('ablation', {}),
}
# Each row against its table's base, and the paper's Cityscapes mIoU, written out from the paper.
ROWS = {
    'table1/byol': ({'model.method': 'byol', 'data.iou_threshold': 0.0}, 69.4),
    'table1/multisiam': ({}, 74.1),
    'table1/no_kmeans': ({'model.kmeans.enabled': False}, 71.0),
    'table1/moco': ({'model.method': 'multisiam_moco'}, 75.5),
    'table1/soda5m': ({'train.epochs': 55, 'data.num_examples': 5_000_000,
                       'data.format': 'soda10m', 'data.split': 'unlabeled',
                       'data.soda_splits': (0, 2, 4, 6, 8)}, 75.8),
    'table2a/iou_0.3': ({'data.iou_threshold': 0.3}, 69.2),
    'table2a/iou_0.4': ({'data.iou_threshold': 0.4}, 68.6),
    'table2a/iou_0.5': ({}, 70.0),
    'table2a/iou_0.6': ({'data.iou_threshold': 0.6}, 69.7),
    'table2a/iou_0.7': ({'data.iou_threshold': 0.7}, 69.2),
    'table2b/none': ({'model.alignment': 'none'}, 68.8),
    'table2b/roi': ({}, 70.0),
    'table2b/offset': ({'model.alignment': 'offset'}, 69.5),
    'table2b/offset_nonorm': ({'model.alignment': 'offset', 'model.offset_normalize': False},
                              69.4),
    'table3/k3': ({}, 70.0),
    'table3/k4': ({'model.kmeans.k': 4}, 68.4),
    'table3/k5': ({'model.kmeans.k': 5}, 69.7),
    'table3/dense': ({'model.kmeans.dense': True}, 69.0),
    'table3/euclidean': ({'model.kmeans.metric': 'euclidean'}, 69.3),
    'table4/byol': ({'model.method': 'byol', 'data.iou_threshold': 0.0}, 67.2),
    'table4/byol_iou': ({'model.method': 'byol'}, 69.2),
    'table4/cluster': ({'model.alignment': 'roi', 'model.attention.enabled': False}, 70.0),
    'table4/attention': ({'model.alignment': 'roi'}, 71.2),
    'table4/offset': ({}, 71.9),
    'table4/offset_nonorm': ({'model.offset_normalize': False}, 71.2),
    'table8/scale_0.08': ({}, 71.9),
    'table8/scale_0.2': ({'data.area_range': (0.2, 1.0)}, 71.7),
    'table8/lr_1.0': ({'optim.base_lr': 1.0}, 72.9),
    'table8/tau_0.99': ({'data.area_range': (0.2, 1.0), 'optim.base_lr': 0.1}, 71.6),
    'table8/tau_0.996': ({'data.area_range': (0.2, 1.0), 'optim.base_lr': 0.1,
                          'optim.tau_base': 0.996}, 72.3),
    'table9/roi': ({'model.alignment': 'roi'}, 71.2),
    'table9/roi_residual': ({'model.alignment': 'roi', 'model.attention.residual': True}, 71.4),
    'table9/offset': ({}, 71.9),
    'table9/offset_residual': ({'model.attention.residual': True}, 70.0),
}
# Rows of the same run: the paper reports one score for each group.
SAME_RUN = [
    {'table2a/iou_0.5', 'table2b/roi', 'table3/k3', 'table4/cluster'},
    {'table4/attention', 'table9/roi'},
    {'table4/offset', 'table8/scale_0.08', 'table9/offset'},
]


def flat(config):
  out = {}

  def walk(node, prefix):
    for key, value in node.items():
      if isinstance(value, ml_collections.ConfigDict):
        walk(value, prefix + key + '.')
      else:
        out[prefix + key] = value
  walk(config, '')
  return out


def diff(config, base):
  a, b = flat(config), flat(base)
  assert a.keys() == b.keys()
  return {k: v for k, v in a.items() if v != b[k]}


def test_every_row_is_present_in_the_papers_order_with_its_number():
  assert list(paper.PAPER_MIOU) == list(ROWS)
  assert paper.PAPER_MIOU == {name: miou for name, (_, miou) in ROWS.items()}
  assert paper.RANDOM_INIT_MIOU == 65.3


@pytest.mark.parametrize('name', ROWS)
def test_row_differs_from_its_tables_base_exactly_as_listed(name):
  table = name.split('/')[0]
  assert diff(paper.get_config(name), paper.base_config(table)) == ROWS[name][0]


@pytest.mark.parametrize('table', BASES)
def test_table_base_is_its_schedules_full_model_with_the_listed_changes(table):
  schedule, changes = BASES[table]
  assert diff(paper.base_config(table), waymo.get_config(schedule)) == changes


def test_ablation_schedule_is_the_papers():
  c = config_lib.resolve_schedule(paper.get_config('table4/offset'))
  assert (c.train.batch_size, c.train.accumulate_steps) == (1024, 4)
  assert c.train.steps == 150 * 790_000 // 4096
  assert (c.optim.base_lr, c.optim.tau_base, tuple(c.data.area_range)) == (0.3, 0.99, (0.08, 1.0))
  full = paper.get_config('table1/multisiam')
  assert (full.train.epochs, full.optim.base_lr, full.optim.tau_base) == (325, 1.0, 0.996)
  assert full.train.accumulate_steps == 1


# Below the paper's scale, the recipe (optimiser, lr, tau_base 0.99) and the size (steps, no
# accumulation) replace all that Table 1's schedule and the ablation schedule differ in.
SMALL_SAME_RUN = SAME_RUN[:2] + [SAME_RUN[2] | {'table1/multisiam'},
                                 {'table1/byol', 'table4/byol'}]


def row_value(name, field, recipe):
  """What a row sets `field` to at a scale with `recipe`: a learning rate the same multiple of
  the recipe's as the paper's row is of its table's base (0.3 on the ablation schedule)."""
  value = ROWS[name][0].get(field, recipe[field])
  if field == 'optim.base_lr' and field in ROWS[name][0]:
    value *= recipe[field] / 0.3
  return value


@pytest.mark.parametrize('scale', ['paper', 'small', 'camvid', 'demo'])
def test_every_row_validates_and_only_the_listed_rows_share_a_run(scale):
  configs = {name: config_lib.validate(paper.get_config(f'{name},{scale}')) for name in ROWS}
  groups = {}
  for name, c in configs.items():
    groups.setdefault(c.to_json(sort_keys=True), set()).add(name)
  shared = [g for g in groups.values() if len(g) > 1]
  if scale == 'paper':
    assert sorted(map(sorted, shared)) == sorted(map(sorted, SAME_RUN))
  else:  # the scale sets the duration and the data: SODA5M's 55 epochs go with them
    assert all(g in SMALL_SAME_RUN or 'table1/soda5m' in g for g in shared)
  recipe, size = paper.SCALES[scale]
  for name, c in configs.items():
    for field, value in size.items():
      assert flat(c)[field] == value, (name, field)
    for field in recipe:  # the row's own value where it sets one
      assert flat(c)[field] == pytest.approx(row_value(name, field, recipe)), (name, field)


def test_row_changes_survive_a_scale_and_its_recipe():
  c = paper.get_config('table8/tau_0.996,camvid')
  assert (c.optim.tau_base, tuple(c.data.area_range)) == (0.996, (0.2, 1.0))
  assert (c.optim.name, c.optim.base_lr) == ('adamw', pytest.approx(0.008 * 0.1 / 0.3))
  assert (c.model.backbone.depth, c.train.steps, c.data.format) == (18, 600, 'folder')
  assert c.data.color_strength == waymo.SMALL_RECIPE['data.color_strength'] == 0.5
  assert paper.get_config('table8/scale_0.08,camvid').optim.tau_base == 0.99


@pytest.mark.parametrize('scale', ['small', 'camvid', 'demo'])
def test_table8_lr_rows_keep_their_ratio_to_the_base_at_every_scale(scale):
  lr = {row: paper.get_config(f'table8/{row},{scale}').optim.base_lr
        for row in ('scale_0.08', 'lr_1.0', 'tau_0.99')}
  assert lr['scale_0.08'] == paper.SCALES[scale].recipe['optim.base_lr'] == 0.008
  assert lr['lr_1.0'] / lr['scale_0.08'] == pytest.approx(1.0 / 0.3)
  assert lr['tau_0.99'] / lr['scale_0.08'] == pytest.approx(0.1 / 0.3)
  assert paper.get_config('table8/lr_1.0').optim.base_lr == 1.0  # the paper's own, for LARS


def test_rows_selects_tables_and_rows_in_the_papers_order():
  assert paper.rows('table9/offset,table4') == [
      'table4/byol', 'table4/byol_iou', 'table4/cluster', 'table4/attention', 'table4/offset',
      'table4/offset_nonorm', 'table9/offset']
  assert paper.rows('table2a/iou_0.3,table2a') == [n for n in ROWS if n.startswith('table2a/')]


@pytest.mark.parametrize('arg,message', [
    ('table4', "'table4' is a table: name one of its rows, table4/byol, table4/byol_iou"),
    ('table5/offset', "unknown table 'table5' in 'table5/offset'; known tables: table1, table2a"),
    ('table4/nope', "unknown row 'table4/nope'; known rows: table4/byol, table4/byol_iou"),
    ('table4/offset,huge', "unknown scale 'huge'; known scales: paper, small, camvid"),
])
def test_bad_argument_names_what_is_known(arg, message):
  with pytest.raises(config_lib.ConfigError) as error:
    paper.get_config(arg)
  assert message in str(error.value)
