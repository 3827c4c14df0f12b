r"""Pretraining on a small real set: the 367 CamVid training frames, without their labels.

  python scripts/pretrain.py --config configs/camvid.py --workdir runs/camvid
  python scripts/pretrain.py --config configs/camvid.py:byol --workdir runs/camvid_byol
  python scripts/finetune.py --workdir runs/camvid --baseline --format camvid \
      --train ../shared/data/camvid_train --val ../shared/data/camvid_val \
      --size 180 240 --crop 128 128

The argument picks the method: multisiam (the default: the full model, configs/paper.py's
table1/multisiam), byol (table1/byol) or byol_iou (table4/byol_iou), each at the `camvid` scale:
a ResNet-18 at half width on 96 px views, batch 32, 600 steps (52 epochs), with the small-scale
recipe (configs/multisiam_waymo.py:SMALL_RECIPE); `METHOD,adamw` (e.g. `byol,adamw`) trains with
AdamW instead of LARS, which probed and fine-tuned better here on 17 of 18 pairs of method,
evaluation and seed. What each gives against a random init, over seeds: docs/METHOD.md
section 10.
"""

import os

from multisiam_tf import config as config_lib

paper = config_lib.load(os.path.join(os.path.dirname(__file__), 'paper.py'))
ROWS = {'multisiam': 'table1/multisiam', 'byol': 'table1/byol', 'byol_iou': 'table4/byol_iou'}
# AdamW at lr 1e-3 for batch 32 (base lr 0.008 per 256), BN and biases without weight decay.
ADAMW = {'optim.name': 'adamw', 'optim.base_lr': 0.008, 'optim.weight_decay': 0.05}


def get_config(arg=''):
  method, *optimizer = (arg or 'multisiam').split(',')
  if method not in ROWS or optimizer not in ([], ['adamw']):
    raise config_lib.ConfigError(f'unknown argument {arg!r}; known: METHOD or METHOD,adamw with '
                                 f'METHOD one of {", ".join(ROWS)}')
  c = paper.get_config(f'{ROWS[method]},camvid')
  return config_lib.override(c, ADAMW) if optimizer else c
