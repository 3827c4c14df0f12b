r"""The demo: MultiSiam on the built-in synthetic street scenes, on a CPU, in minutes.

  python scripts/make_demo_data.py --out runs/demo/data --num 256 --size 160 240
  python scripts/pretrain.py --config configs/demo.py --workdir runs/demo \
      --config.data.path=runs/demo/data/images

A ResNet-18 at half width on 96 px views (output stride 16: a 6x6 map), batch 16, 10 epochs of
the 256 scenes: 10 * 256 / 16 = 160 steps, the first epoch (16 steps) of them warmup.
"""

from multisiam_tf import config as config_lib


def get_config(arg=''):
  del arg
  c = config_lib.defaults()
  c.data.path = 'runs/demo/data/images'
  c.data.format = 'folder'
  c.data.image_size = 96
  c.data.shuffle_buffer = 256
  c.data.num_examples = 256
  c.model.backbone.depth = 18
  c.model.backbone.width = 0.5
  c.model.backbone.output_stride = 16
  c.model.head.hidden_dim = 512
  c.model.head.output_dim = 128
  c.train.batch_size = 16
  c.train.epochs = 10
  c.optim.base_lr = 1.0
  c.optim.warmup_epochs = 1
  c.train.steps_per_loop = 10
  c.train.checkpoint_every = 100
  c.train.log_every = 10
  c.train.image_every = 100
  return c
