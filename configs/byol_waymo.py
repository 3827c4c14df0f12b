r"""BYOL on Waymo Open, the paper's baseline (Table 1): global branch only, unconstrained crops,
the same schedule as configs/multisiam_waymo.py.

  python scripts/pretrain.py --config configs/byol_waymo.py --workdir runs/byol_waymo \
      --config.data.path='/data/waymo/training/*.tfrecord'

Arguments as configs/multisiam_waymo.py: `ablation`, `small`.
"""

from multisiam_tf import config as config_lib


def get_config(arg=''):
  c = config_lib.waymo_recipe(arg)
  c.model.method = 'byol'
  c.data.iou_threshold = 0.0  # independent crops, as BYOL
  return c
