r"""The paper's tables (1, 2a, 2b, 3, 4, 8, 9) as configs, every row on its table's own base.

  python scripts/pretrain.py --config configs/paper.py:table4/offset --workdir runs/table4_offset \
      --config.data.path='/data/waymo/training/*.tfrecord'
  python scripts/pretrain.py --config configs/paper.py:table2a/iou_0.3,camvid --workdir runs/x
  python scripts/study.py --rows table4 --seeds 0,1,2 --scale camvid --out runs/study  # all rows

The argument is TABLE/ROW[,SCALE]. A table alone is no config (it is several runs): the error
lists its rows, and scripts/study.py runs them all. SCALE sets the size of a run (SCALES):
  paper   the paper's: ResNet-50, 224 px, batch 1024, Waymo (the default)
  small   configs/multisiam_waymo.py:small, a ResNet-18 check run of 300 steps on Waymo
  camvid  a ResNet-18 at half width on the 367 CamVid training frames, 600 steps
  demo    the same network on make demo's 256 synthetic scenes, 160 steps

Bases (METHOD.md section 6). Tables 2-4, 8, 9 run on the ablation schedule (§4.3, App. D,
configs/multisiam_waymo.py:ablation): 150 epochs, base lr 0.3, 4 accumulated steps of 1024,
tau_base 0.99, minimum crop scale 0.08. Tables 2a, 2b, 3 start from RoI alignment with the
K-means target and no self-attention (70.0); Tables 4, 8, 9 from the full model (offset
alignment with attention, 71.9). Table 1 runs the paper's schedule: 325 epochs, base lr 1.0,
tau_base 0.996, no accumulation. A scale below the paper's first puts its recipe (optimiser,
augmentation) over the base; each row then changes it by the overrides written beside it, and
the scale's size (data, network, batch, duration) replaces the row's fields where both set one.
A row's `optim.base_lr` is the paper's, for LARS: below the paper's scale it becomes the same
multiple of the recipe's lr (Table 8's lr_1.0, 1.0 / 0.3 of its base's, is 0.008 / 0.3 there).
PAPER_MIOU: Cityscapes val mIoU.
The same score in two tables is the same run (e.g. table2a/iou_0.5 = table2b/roi = table3/k3 =
table4/cluster): the rows build equal configs, and the study runner trains them once.
"""

import os
from typing import NamedTuple

from multisiam_tf import config as config_lib

waymo = config_lib.load(os.path.join(os.path.dirname(__file__), 'multisiam_waymo.py'))
soda5m = config_lib.load(os.path.join(os.path.dirname(__file__), 'multisiam_soda5m.py'))


class Table(NamedTuple):
  title: str
  schedule: str  # configs/multisiam_waymo.py's argument: '' (the paper's) or 'ablation'
  base: dict  # overrides of that schedule's full model
  rows: dict  # name: (overrides of the base, the paper's Cityscapes mIoU)


ROI_CLUSTER = {'model.alignment': 'roi', 'model.attention.enabled': False}

TABLES = {
    'table1': Table('Table 1: Waymo, 325 epochs', '', {}, {
        'byol': ({'model.method': 'byol', 'data.iou_threshold': 0.0}, 69.4),
        'multisiam': ({}, 74.1),
        'no_kmeans': ({'model.kmeans.enabled': False}, 71.0),  # App. B.1
        'moco': ({'model.method': 'multisiam_moco'}, 75.5),  # App. B.2
        'soda5m': ({'train.epochs': soda5m.EPOCHS, **soda5m.SODA5M}, 75.8),
    }),
    'table2a': Table('Table 2a: IoU threshold', 'ablation', ROI_CLUSTER, {
        'iou_0.3': ({'data.iou_threshold': 0.3}, 69.2),
        'iou_0.4': ({'data.iou_threshold': 0.4}, 68.6),
        'iou_0.5': ({}, 70.0),
        'iou_0.6': ({'data.iou_threshold': 0.6}, 69.7),
        'iou_0.7': ({'data.iou_threshold': 0.7}, 69.2),
    }),
    'table2b': Table('Table 2b: feature alignment', 'ablation', ROI_CLUSTER, {
        'none': ({'model.alignment': 'none'}, 68.8),
        'roi': ({}, 70.0),
        'offset': ({'model.alignment': 'offset'}, 69.5),
        'offset_nonorm': ({'model.alignment': 'offset', 'model.offset_normalize': False}, 69.4),
    }),
    'table3': Table('Table 3: intra-image clustering', 'ablation', ROI_CLUSTER, {
        'k3': ({}, 70.0),
        'k4': ({'model.kmeans.k': 4}, 68.4),
        'k5': ({'model.kmeans.k': 5}, 69.7),
        'dense': ({'model.kmeans.dense': True}, 69.0),
        'euclidean': ({'model.kmeans.metric': 'euclidean'}, 69.3),
    }),
    'table4': Table('Table 4: components', 'ablation', {}, {
        'byol': ({'model.method': 'byol', 'data.iou_threshold': 0.0}, 67.2),
        'byol_iou': ({'model.method': 'byol'}, 69.2),
        'cluster': (ROI_CLUSTER, 70.0),
        'attention': ({'model.alignment': 'roi'}, 71.2),
        'offset': ({}, 71.9),
        'offset_nonorm': ({'model.offset_normalize': False}, 71.2),
    }),
    'table8': Table('Table 8: optimisation', 'ablation', {}, {
        'scale_0.08': ({}, 71.9),
        'scale_0.2': ({'data.area_range': (0.2, 1.0)}, 71.7),
        'lr_1.0': ({'optim.base_lr': 1.0}, 72.9),
        'tau_0.99': ({'data.area_range': (0.2, 1.0), 'optim.base_lr': 0.1}, 71.6),
        'tau_0.996': ({'data.area_range': (0.2, 1.0), 'optim.base_lr': 0.1,
                       'optim.tau_base': 0.996}, 72.3),
    }),
    'table9': Table('Table 9: residual in self-attention', 'ablation', {}, {
        'roi': ({'model.alignment': 'roi'}, 71.2),
        'roi_residual': ({'model.alignment': 'roi', 'model.attention.residual': True}, 71.4),
        'offset': ({}, 71.9),
        'offset_residual': ({'model.attention.residual': True}, 70.0),
    }),
}

PAPER_MIOU = {f'{table}/{row}': miou for table, t in TABLES.items()
              for row, (_, miou) in t.rows.items()}
RANDOM_INIT_MIOU = 65.3  # Table 1, Random Init

class Scale(NamedTuple):
  recipe: dict  # optimiser and augmentation: beneath the row's overrides (Table 8 varies them)
  size: dict  # data, backbone, views, batch and duration: over the row's


SCALES = {
    'paper': Scale({}, {}),
    'small': Scale(waymo.SMALL_RECIPE, waymo.SMALL_SIZE),
    'camvid': Scale(waymo.SMALL_RECIPE, {
        'data.path': '../shared/data/camvid_train/images', 'data.format': 'folder',
        'data.num_examples': 367, 'data.shuffle_buffer': 367, 'data.image_size': 96,
        'model.backbone.depth': 18, 'model.backbone.width': 0.5,
        'model.backbone.output_stride': 16,  # a 6x6 map at 96 px
        'model.head.hidden_dim': 512, 'model.head.output_dim': 128,
        # 600 steps of 32 = 52 epochs of the 367 frames
        'train.batch_size': 32, 'train.accumulate_steps': 1, 'train.steps': 600,
        'optim.warmup_steps': 60, 'train.checkpoint_every': 300,
    }),
    'demo': Scale(waymo.SMALL_RECIPE, {  # the synthetic scenes of scripts/make_demo_data.py
        'data.path': 'runs/demo/data/images', 'data.format': 'folder',
        'data.num_examples': 256, 'data.shuffle_buffer': 256, 'data.image_size': 96,
        'model.backbone.depth': 18, 'model.backbone.width': 0.5,
        'model.backbone.output_stride': 16,
        'model.head.hidden_dim': 512, 'model.head.output_dim': 128,
        # 10 epochs of the 256 scenes: 160 steps of 16, the first epoch warmup
        'train.batch_size': 16, 'train.accumulate_steps': 1, 'train.epochs': 10,
        'optim.warmup_epochs': 1, 'train.steps_per_loop': 10, 'train.checkpoint_every': 100,
        'train.log_every': 10, 'train.image_every': 100,
    }),
}


def _known(kind, names):
  return f'known {kind}: {", ".join(names)}'


def _table_base(table):
  t = TABLES[table]
  return config_lib.override(waymo.get_config(t.schedule), t.base)


def _check_scale(scale):
  if scale not in SCALES:
    raise config_lib.ConfigError(f'unknown scale {scale!r}; {_known("scales", SCALES)}')


def base_config(table, scale='paper'):
  """The base of `table` at `scale`: the schedule's full model with the table's overrides, then
  the scale's."""
  rows(table)  # names the table if it is unknown
  _check_scale(scale)
  recipe, size = SCALES[scale]
  return config_lib.override(config_lib.override(_table_base(table), recipe), size)


def rows(selection):
  """The rows 'table/row' of a comma-separated selection of tables and rows, in the paper's
  order (tables, then rows within each), each once."""
  chosen = set()
  for item in filter(None, selection.split(',')):
    table, _, row = item.partition('/')
    if table not in TABLES:
      raise config_lib.ConfigError(f'unknown table {table!r} in {item!r}; '
                                   f'{_known("tables", TABLES)}')
    of_table = [f'{table}/{r}' for r in TABLES[table].rows]
    if row and item not in of_table:
      raise config_lib.ConfigError(f'unknown row {item!r}; {_known("rows", of_table)}')
    chosen.update([item] if row else of_table)
  if not chosen:
    raise config_lib.ConfigError(f'no rows selected; {_known("tables", TABLES)}')
  return [name for name in PAPER_MIOU if name in chosen]


def get_config(arg='table4/offset'):
  name, *scales = arg.split(',')
  if len(scales) > 1:
    raise config_lib.ConfigError(f'one scale at most, got {scales}; {_known("scales", SCALES)}')
  scale = scales[0] if scales else 'paper'
  _check_scale(scale)
  selected = rows(name)  # names the table or the row if it is unknown
  table, _, row = name.partition('/')
  if not row:
    raise config_lib.ConfigError(f'{table!r} is a table: name one of its rows, '
                                 f'{", ".join(selected)}')
  recipe, size = SCALES[scale]
  base = _table_base(table)
  changes = dict(TABLES[table].rows[row][0])
  if 'optim.base_lr' in changes and 'optim.base_lr' in recipe:
    changes['optim.base_lr'] *= recipe['optim.base_lr'] / base.optim.base_lr
  c = config_lib.override(config_lib.override(base, recipe), changes)
  return config_lib.override(c, size)
