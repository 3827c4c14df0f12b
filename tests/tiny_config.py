r"""The smallest MultiSiam the tests run: ResNet-18 at width 0.25, output stride 16, heads of 32.

  python scripts/pretrain.py --config tests/tiny_config.py --workdir /tmp/tiny \
      --config.data.path=IMAGES --strategy default

The argument is the view size in pixels: 32 (a 2x2 map, the default) or 64 (4x4). 6 updates of
batch 2, logged every step, images at step 4, checkpoints every 2 steps. base_lr is large so
that LARS (trust 1e-3) moves the weights enough for runs to tell different data apart.
"""

from multisiam_tf import config as config_lib

TINY = {
    'data.format': 'folder',
    'data.num_examples': 8,
    'model.backbone.depth': 18,
    'model.backbone.width': 0.25,
    'model.backbone.output_stride': 16,
    'model.head.hidden_dim': 32,
    'model.head.output_dim': 32,
    'model.kmeans.k': 2,
    'model.moco.queue_size': 64,
    'train.batch_size': 2,
    'train.steps': 6,
    'train.steps_per_loop': 2,
    'train.checkpoint_every': 2,
    'train.log_every': 1,
    'train.image_every': 4,
    'train.precision': 'float32',  # not 'auto': runs compare alike on CPUs with and without bf16
    'optim.base_lr': 50.0,  # lr = 50 * 2 / 256 = 0.39
    'optim.warmup_steps': 1,
}


def get_config(arg=''):
  return config_lib.override(config_lib.defaults(), {**TINY, 'data.image_size': int(arg or 32)})
