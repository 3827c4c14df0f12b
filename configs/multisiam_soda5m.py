r"""MultiSiam on SODA5M (paper §4.2, Table 1): SODA10M's unlabeled splits 0, 2, 4, 6, 8, 55 epochs,
otherwise as configs/multisiam_waymo.py.

  python scripts/pretrain.py --config configs/multisiam_soda5m.py --workdir runs/multisiam_soda5m \
      --config.data.path=/data/soda10m

data.path is the folder holding SSLAD-2D/ (SSLAD-2D/unlabel/image_N/*.jpg). Arguments as
configs/multisiam_waymo.py (`ablation`, `small`).
"""

import os

from multisiam_tf import config as config_lib

waymo = config_lib.load(os.path.join(os.path.dirname(__file__), 'multisiam_waymo.py'))

# §4.2: "a 5-million subset of SODA10M (split 0, 2, 4, 6, 8)"; also paper.py's table1/soda5m.
SODA5M = {'data.format': 'soda10m', 'data.split': 'unlabeled', 'data.soda_splits': (0, 2, 4, 6, 8),
          'data.num_examples': 5_000_000}
EPOCHS = 55


def get_config(arg=''):
  c = config_lib.override(waymo.get_config(arg), SODA5M)
  if c.train.epochs == 325:  # the Waymo schedule's; the ablation and small variants keep theirs
    c.train.epochs = EPOCHS
  return c
