r"""MultiSiam on Waymo Open, as the paper trains it (§4.1): ResNet-50, 224 px, batch 1024, 325 epochs,
LARS lr = 1.0 * batch / 256, weight decay 1e-5, tau 0.996, IoU 0.5, K 3, offset alignment, attention.

  python scripts/pretrain.py --config configs/multisiam_waymo.py --workdir runs/multisiam_waymo \
      --config.data.path='/data/waymo/training/*.tfrecord'

Arguments after a colon, comma-separated: `ablation` (150 epochs, base lr 0.3, 4 accumulated steps,
§4.3), `small` (ResNet-18 at 112 px for 300 steps, to check a set-up).
"""

from multisiam_tf import config as config_lib


def get_config(arg=''):
  return config_lib.waymo_recipe(arg)
