r"""BYOL on Waymo Open, the paper's baseline (Table 1): global branch only, unconstrained crops,
the same schedule as configs/multisiam_waymo.py.

  python scripts/pretrain.py --config configs/byol_waymo.py --workdir runs/byol_waymo \
      --config.data.path='/data/waymo/training/*.tfrecord'

Arguments as configs/multisiam_waymo.py: `ablation`, `small`.
"""

import os

from multisiam_tf import config as config_lib

waymo = config_lib.load(os.path.join(os.path.dirname(__file__), 'multisiam_waymo.py'))


def get_config(arg=''):
  c = waymo.get_config(arg)
  c.model.method = 'byol'
  c.data.iou_threshold = 0.0  # independent crops, as BYOL
  return c
