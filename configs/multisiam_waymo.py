r"""MultiSiam on Waymo Open, as the paper trains it (§4.1, Table 1).

  python scripts/pretrain.py --config configs/multisiam_waymo.py --workdir runs/multisiam_waymo \
      --config.data.path='/data/waymo/training/*.tfrecord'

Arguments after a colon, comma-separated:
  ablation  the ablation schedule (§4.3, App. D): 150 epochs, base lr 0.3, 4 accumulated steps
            of 1024 (an update sees 4096 images), tau_base 0.99, minimum crop scale 0.08.
  small     a ResNet-18 at 112 px, batch 32, 300 steps, with the small-scale recipe (SMALL_RECIPE):
            checks a set-up end to end in minutes.

Scaling rules, applied at run time to the final config, so that overrides keep them:
  images per update = batch_size * accumulate_steps              1024 * 1 = 1024
  steps             = epochs * num_examples / images per update  325 * 790000 / 1024 = 250732
  warmup steps      = warmup_epochs * num_examples / (same)      10 * 790000 / 1024 = 7714
  lr                = base_lr * images per update / 256          1.0 * 1024 / 256 = 4.0
  tau               = 1 - (1 - tau_base) (cos(pi step / steps) + 1) / 2, from 0.996 to 1
"""

from multisiam_tf import config as config_lib

WAYMO_TRAIN_IMAGES = 790_000  # §4.1: "around 790 thousand training images"

# What it takes to learn at small scale (METHOD.md section 10): the optimiser and augmentation.
# AdamW at lr 1e-3 for batch 32 (BN and biases without weight decay): it beat LARS on CamVid in
# 17 of 18 pairs of method, evaluation and seed.
SMALL_RECIPE = {
    'optim.name': 'adamw', 'optim.base_lr': 0.008, 'optim.weight_decay': 0.05,
    'optim.tau_base': 0.99,
    'data.color_strength': 0.5,  # half BYOL's colour jitter: colour is a cue of street classes
}
SMALL_SIZE = {
    'model.backbone.depth': 18,
    'model.backbone.output_stride': 16,  # keeps a 7x7 map at 112 px
    'data.image_size': 112, 'train.batch_size': 32, 'train.accumulate_steps': 1,
    'train.steps': 300, 'optim.warmup_steps': 30, 'train.checkpoint_every': 100,
}

VARIANTS = {
    'ablation': {
        'train.epochs': 150, 'optim.base_lr': 0.3, 'train.accumulate_steps': 4,
        'optim.tau_base': 0.99, 'data.area_range': (0.08, 1.0),
    },
    'small': {**SMALL_RECIPE, **SMALL_SIZE},
}


def get_config(arg=''):
  variants = list(filter(None, arg.split(',')))
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown:
    raise config_lib.ConfigError(
        f'unknown config argument(s) {unknown}; known: {", ".join(VARIANTS)}')
  c = config_lib.defaults()
  c.data.format = 'waymo_v1'  # segment TFRecords of Frame protos
  c.data.num_examples = WAYMO_TRAIN_IMAGES
  c.data.image_size = 224
  c.data.iou_threshold = 0.5
  c.data.area_range = (0.08, 1.0)

  c.model.method = 'multisiam'
  c.model.backbone.depth = 50
  c.model.head.hidden_dim = 4096
  c.model.head.output_dim = 256
  c.model.alignment = 'offset'
  c.model.attention.enabled = True
  c.model.kmeans.k = 3
  c.model.loss_lambda = 0.5

  c.train.batch_size = 1024  # 8 GPUs in the paper
  c.train.accumulate_steps = 1
  c.train.epochs = 325
  c.optim.base_lr = 1.0
  c.optim.warmup_epochs = 10  # BYOL's
  c.optim.weight_decay = 1e-5
  c.optim.trust_coefficient = 1e-3
  c.optim.tau_base = 0.996
  for variant in variants:  # in the order given: `ablation,small` is a small ablation run
    config_lib.override(c, VARIANTS[variant])
  return c
