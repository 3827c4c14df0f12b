r"""The paper's ablations on Waymo (Tables 2-4, 9, App. B), one name each, on the ablation schedule
of configs/multisiam_waymo.py:ablation (150 epochs, base lr 0.3, 4 accumulated steps of 1024,
tau_base 0.99, minimum crop scale 0.08).

  python scripts/pretrain.py --config configs/ablations_waymo.py:cluster --workdir runs/cluster \
      --config.data.path='/data/waymo/training/*.tfrecord'

Append `,small` to any name for a ResNet-18 check run, e.g. `configs/ablations_waymo.py:roi,small`.
Table 4, top to bottom: byol, byol_iou, cluster, attention, offset.
"""

import os

from multisiam_tf import config as config_lib

waymo = config_lib.load(os.path.join(os.path.dirname(__file__), 'multisiam_waymo.py'))

ABLATIONS = {
    'byol': {'model.method': 'byol', 'data.iou_threshold': 0.0},
    'byol_iou': {'model.method': 'byol'},
    'cluster': {'model.alignment': 'none', 'model.attention.enabled': False},
    'attention': {'model.alignment': 'none'},
    'offset': {},  # full MultiSiam
    'offset_nonorm': {'model.offset_normalize': False},
    'roi': {'model.alignment': 'roi'},
    'iou_0.3': {'data.iou_threshold': 0.3},
    'iou_0.7': {'data.iou_threshold': 0.7},
    'k4': {'model.kmeans.k': 4},
    'k5': {'model.kmeans.k': 5},
    'euclidean': {'model.kmeans.metric': 'euclidean'},
    'dense': {'model.kmeans.dense': True},
    'no_kmeans': {'model.kmeans.enabled': False},
    'residual': {'model.attention.residual': True},
    'moco': {'model.method': 'multisiam_moco'},
}


def get_config(arg='offset'):
  name, *variants = arg.split(',')
  if name not in ABLATIONS:
    raise config_lib.ConfigError(f'unknown ablation {name!r}; known: {", ".join(ABLATIONS)}')
  return config_lib.override(waymo.get_config(','.join(['ablation'] + variants)), ABLATIONS[name])
