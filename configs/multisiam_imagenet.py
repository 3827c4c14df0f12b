r"""MultiSiam on ImageNet (paper App. C): 200 epochs on the 1.28M training images, every other
hyper-parameter as on Waymo (configs/multisiam_waymo.py).

  python scripts/pretrain.py --config configs/multisiam_imagenet.py \
      --workdir runs/multisiam_imagenet --config.data.path=/data/imagenet

data.path is the folder holding train/WNID/*.JPEG. Arguments as configs/multisiam_waymo.py
(`ablation`, `small`).
"""

import os

from multisiam_tf import config as config_lib

waymo = config_lib.load(os.path.join(os.path.dirname(__file__), 'multisiam_waymo.py'))

IMAGENET_TRAIN_IMAGES = 1_281_167  # ILSVRC-2012 train


def get_config(arg=''):
  c = waymo.get_config(arg)
  c.data.update(format='imagenet', split='train', num_examples=IMAGENET_TRAIN_IMAGES)
  if c.train.epochs == 325:  # the Waymo schedule's; the ablation and small variants keep theirs
    c.train.epochs = 200
  return c
