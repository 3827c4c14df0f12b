r"""Pretraining on a small real set: the 367 CamVid training frames, without their labels.

  python scripts/pretrain.py --config configs/camvid.py --workdir runs/camvid
  python scripts/pretrain.py --config configs/camvid.py:byol --workdir runs/camvid_byol
  python scripts/finetune.py --workdir runs/camvid --baseline --format camvid \
      --train ../shared/data/camvid_train --val ../shared/data/camvid_val \
      --size 180 240 --crop 128 128

The argument picks the method: multisiam (the default: the full model, configs/paper.py's
table1/multisiam), byol (table1/byol) or byol_iou (table4/byol_iou), each at the `camvid` scale:
a ResNet-18 at half width on 96 px views, batch 32, 600 steps (52 epochs), with the small-scale
recipe (configs/multisiam_waymo.py:SMALL_RECIPE: AdamW). `METHOD,lars` (e.g. `byol,lars`) trains
with the paper's optimiser instead, at the base lr 1.0 that the recipe first had. BYOL and
MultiSiam gave their best results here after 2400 steps (`--config.train.steps=2400`, about 25
minutes on 2 cores). What each gives against a random init, over seeds: docs/METHOD.md
section 10.
"""

import os

from multisiam_tf import config as config_lib

paper = config_lib.load(os.path.join(os.path.dirname(__file__), 'paper.py'))
ROWS = {'multisiam': 'table1/multisiam', 'byol': 'table1/byol', 'byol_iou': 'table4/byol_iou'}
# LARS (eta 1e-3) at base lr 1.0 with the paper's weight decay: section 10's LARS runs.
LARS = {'optim.name': 'lars', 'optim.base_lr': 1.0, 'optim.weight_decay': 1e-5}


def get_config(arg=''):
  method, *optimizer = (arg or 'multisiam').split(',')
  if method not in ROWS or optimizer not in ([], ['lars']):
    raise config_lib.ConfigError(f'unknown argument {arg!r}; known: METHOD or METHOD,lars with '
                                 f'METHOD one of {", ".join(ROWS)}')
  c = paper.get_config(f'{ROWS[method]},camvid')
  return config_lib.override(c, LARS) if optimizer else c
