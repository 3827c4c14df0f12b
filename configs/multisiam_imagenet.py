r"""MultiSiam on ImageNet (paper App. C): 200 epochs on the 1.28M training images, every other
hyper-parameter as on Waymo (configs/multisiam_waymo.py).

  python scripts/pretrain.py --config configs/multisiam_imagenet.py \
      --workdir runs/multisiam_imagenet --config.data.path=/data/imagenet

data.path is the folder holding train/WNID/*.JPEG. Argument: `small` (ResNet-18 at 112 px for
300 steps, to check a set-up).
"""

from multisiam_tf import config as config_lib

IMAGENET_TRAIN_IMAGES = 1_281_167  # ILSVRC-2012 train


def get_config(arg=''):
  if set(filter(None, arg.split(','))) - {'small'}:
    raise config_lib.ConfigError(f'unknown config argument(s) {arg!r}; known: small')
  c = config_lib.waymo_recipe(arg)
  c.data.update(format='imagenet', split='train', num_examples=IMAGENET_TRAIN_IMAGES)
  if not arg:
    config_lib.set_schedule(c, 200)
  return c
