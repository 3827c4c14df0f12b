r"""Single switches on the full MultiSiam of the ablation schedule (configs/multisiam_waymo.py:
ablation: 150 epochs, base lr 0.3, 4 accumulated steps of 1024, tau_base 0.99, minimum crop scale
0.08), one name each, so that every code path has a config. They are not the paper's rows: its
tables change other bases (Tables 2-3 start from RoI alignment without attention), and
configs/paper.py holds them, each row on its table's own base.

  python scripts/pretrain.py --config configs/ablations_waymo.py:no_kmeans --workdir runs/nk \
      --config.data.path='/data/waymo/training/*.tfrecord'

Append `,small` to any name for a ResNet-18 check run, e.g. `configs/ablations_waymo.py:roi,small`.
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
