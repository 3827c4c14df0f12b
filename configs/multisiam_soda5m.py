r"""MultiSiam on SODA5M (paper §4.2, Table 1): SODA10M's unlabeled splits 0, 2, 4, 6, 8, 55 epochs,
otherwise as configs/multisiam_waymo.py.

  python scripts/pretrain.py --config configs/multisiam_soda5m.py --workdir runs/multisiam_soda5m \
      --config.data.path=/data/soda10m

data.path is the folder holding SSLAD-2D/ (SSLAD-2D/unlabel/image_N/*.jpg). Argument: `small`
(ResNet-18 at 112 px for 300 steps, to check a set-up).
"""

from multisiam_tf import config as config_lib

SODA5M_IMAGES = 5_000_000  # §4.2: "a 5-million subset of SODA10M (split 0, 2, 4, 6, 8)"


def get_config(arg=''):
  if set(filter(None, arg.split(','))) - {'small'}:
    raise config_lib.ConfigError(f'unknown config argument(s) {arg!r}; known: small')
  c = config_lib.waymo_recipe(arg)
  c.data.update(format='soda10m', split='unlabeled', soda_splits=(0, 2, 4, 6, 8),
                num_examples=SODA5M_IMAGES)
  if not arg:
    config_lib.set_schedule(c, 55)
  return c
