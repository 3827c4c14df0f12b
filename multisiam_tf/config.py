"""Every config field with its paper default, and the validation that runs before any work.

Experiment files in `configs/` start from `defaults()` and change what differs; `validate` then
checks the result, so a typo or an out-of-range value fails at start-up naming the field.
"""

import math

import ml_collections

WAYMO_TRAIN_IMAGES = 790_000  # paper §4.1: "around 790 thousand training images"


def defaults():
  """MultiSiam on Waymo as the paper trains it (§4.1, METHOD.md); batch-dependent values derived."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.path = ''  # folder, glob or comma-separated globs
  c.data.format = 'auto'  # auto | folder | tfrecord | waymo_v1 | waymo_v2 | soda10m | bdd100k |
  #                        cityscapes | imagenet | tfds (README: Datasets)
  c.data.split = 'train'  # published layouts and TFDS: comma-separated splits; SODA10M: unlabeled
  c.data.soda_splits = tuple(range(10))  # SODA10M unlabel/image_N; the paper's SODA5M: 0,2,4,6,8
  c.data.cameras = ('FRONT', 'FRONT_LEFT', 'FRONT_RIGHT', 'SIDE_LEFT', 'SIDE_RIGHT')  # Waymo
  c.data.image_size = 224
  c.data.iou_threshold = 0.5  # 0 = unconstrained pairs, as BYOL
  c.data.max_pair_tries = 100
  c.data.pair_candidates = 32  # candidate pairs drawn per vectorised try
  c.data.area_range = (0.08, 1.0)
  c.data.aspect_ratio_range = (3 / 4, 4 / 3)
  c.data.min_image_size = 8
  c.data.decode_and_crop = True
  c.data.max_decode_ratio = 8  # JPEG DCT downscaling 1/r kept >= image_size; 1 = full-res crop
  c.data.skip_corrupt = False
  c.data.shuffle_buffer = 10_000
  c.data.num_examples = WAYMO_TRAIN_IMAGES  # 0 = counted from the source (sources.num_examples)
  c.data.service_address = ''  # tf.data service dispatcher, e.g. grpc://host:5050

  c.model = ml_collections.ConfigDict()
  c.model.method = 'multisiam'  # multisiam | byol | multisiam_moco
  c.model.loss_lambda = 0.5  # eq. 11
  c.model.alignment = 'offset'  # offset | roi | none
  c.model.offset_normalize = True
  c.model.backbone = ml_collections.ConfigDict()
  c.model.backbone.depth = 50
  c.model.backbone.width = 1.0
  c.model.backbone.output_stride = 32
  c.model.backbone.sync_bn = False
  c.model.head = ml_collections.ConfigDict()
  c.model.head.hidden_dim = 4096
  c.model.head.output_dim = 256
  c.model.kmeans = ml_collections.ConfigDict()
  c.model.kmeans.enabled = True
  c.model.kmeans.k = 3
  c.model.kmeans.iterations = 10
  c.model.kmeans.metric = 'cosine'  # cosine | euclidean
  c.model.kmeans.dense = False  # Table 3b "dense clustering"
  c.model.attention = ml_collections.ConfigDict()
  c.model.attention.enabled = True
  c.model.attention.power = 2  # eq. 9
  c.model.attention.residual = False  # Table 9
  c.model.moco = ml_collections.ConfigDict()
  c.model.moco.queue_size = 65536
  c.model.moco.temperature = 0.2  # App. B.2

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 1024  # global batch of one forward pass; one update sees batch_size * accumulate_steps
  c.train.epochs = 325
  c.train.steps = 0  # set with the warmup by set_schedule below
  c.train.steps_per_loop = 100
  c.train.accumulate_steps = 1
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.log_every = 100
  c.train.image_every = 5000
  c.train.precision = 'auto'  # auto | float32 | mixed_bfloat16 | mixed_float16

  c.optim = ml_collections.ConfigDict()
  c.optim.base_lr = 1.0  # lr = base_lr * batch / 256
  c.optim.weight_decay = 1e-5
  c.optim.momentum = 0.9
  c.optim.trust_coefficient = 1e-3
  c.optim.warmup_steps = 0
  c.optim.tau_base = 0.996
  return set_schedule(c, c.train.epochs)


def set_schedule(c, epochs):
  """Derives the optimizer steps and BYOL's 10-epoch warmup from epochs and images per update."""
  images_per_update = c.train.batch_size * c.train.accumulate_steps
  c.train.epochs = epochs
  c.train.steps = int(epochs * c.data.num_examples // images_per_update)
  c.optim.warmup_steps = int(10 * c.data.num_examples // images_per_update)
  return c


def waymo_recipe(arg=''):
  """The paper's Waymo schedule; `arg` holds comma-separated variants.

  ablation  §4.3: 150 epochs, base lr 0.3, 4 accumulated steps of 1024 (acts as batch 4096).
  small     a ResNet-18 at 112 px, batch 32, 300 steps: checks a set-up end to end in minutes.
  """
  args = set(filter(None, arg.split(',')))
  unknown = args - {'ablation', 'small'}
  if unknown:
    raise ConfigError(f'unknown config argument(s) {sorted(unknown)}; known: ablation, small')
  c = defaults()
  c.data.format = 'waymo_v1'
  if 'ablation' in args:
    c.optim.base_lr = 0.3
    c.train.accumulate_steps = 4
    set_schedule(c, 150)
  if 'small' in args:
    c.model.backbone.depth = 18
    c.model.backbone.output_stride = 16  # keeps a 7x7 map at 112 px
    c.data.image_size = 112
    c.train.batch_size = 32
    c.train.accumulate_steps = 1
    c.train.steps = 300
    c.optim.warmup_steps = 30
    c.train.checkpoint_every = 100
  return c


def _choice(*names):
  # True == 1 in Python: a bool matches only a bool
  return lambda v: any(v == n and isinstance(v, bool) == isinstance(n, bool) for n in names), 'one of ' + ', '.join(repr(n) for n in names)


def _interval(lo, hi, closed_lo=True, closed_hi=True):
  def ok(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v >= lo if closed_lo else v > lo) and (v <= hi if closed_hi else v < hi))
  brackets = ('[' if closed_lo else '(') + f'{lo}, {hi}' + (']' if closed_hi else ')')
  return ok, 'a number in ' + brackets


def _integer(lo, hi=None):
  def ok(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
  return ok, f'an integer >= {lo}' + (f' and <= {hi}' if hi is not None else '')


def _boolean():
  return lambda v: isinstance(v, bool), 'True or False'


def _string():
  return lambda v: isinstance(v, str), 'a string'


def _names():
  return (lambda v: isinstance(v, str) and all(n.strip() for n in v.split(',')),
          'comma-separated names, none empty')


def _members(allowed):
  allowed = tuple(allowed)
  def ok(v):
    return (isinstance(v, (tuple, list)) and len(v) > 0 and len(set(v)) == len(v)
            and all(any(x == a and type(x) is type(a) for a in allowed) for x in v))
  return ok, 'a non-empty tuple of distinct values of ' + ', '.join(map(repr, allowed))


def _range_pair(lo, hi):
  def ok(v):
    return (isinstance(v, (tuple, list)) and len(v) == 2
            and all(isinstance(x, (int, float)) and lo < x <= hi for x in v) and v[0] <= v[1])
  return ok, f'a pair (low, high) with {lo} < low <= high <= {hi}'


_INF = float('inf')

RULES = {
    'seed': _integer(0),
    'data.path': _string(),
    'data.format': _choice('auto', 'folder', 'tfrecord', 'waymo_v1', 'waymo_v2', 'soda10m',
                           'bdd100k', 'cityscapes', 'imagenet', 'tfds'),
    'data.split': _names(),
    'data.soda_splits': _members(range(10)),
    'data.cameras': _members(('FRONT', 'FRONT_LEFT', 'FRONT_RIGHT', 'SIDE_LEFT', 'SIDE_RIGHT',
                              1, 2, 3, 4, 5)),
    'data.image_size': _integer(32),
    'data.iou_threshold': _interval(0.0, 1.0),
    'data.max_pair_tries': _integer(1),
    'data.pair_candidates': _integer(1, 1024),
    'data.area_range': _range_pair(0.0, 1.0),
    'data.aspect_ratio_range': _range_pair(0.0, 100.0),
    'data.min_image_size': _integer(1),
    'data.decode_and_crop': _boolean(),
    'data.max_decode_ratio': _choice(1, 2, 4, 8),
    'data.skip_corrupt': _boolean(),
    'data.shuffle_buffer': _integer(0),
    'data.num_examples': _integer(0),
    'data.service_address': _string(),
    'model.method': _choice('multisiam', 'byol', 'multisiam_moco'),
    'model.loss_lambda': _interval(0.0, 1.0),
    'model.alignment': _choice('offset', 'roi', 'none'),
    'model.offset_normalize': _boolean(),
    'model.backbone.depth': _choice(18, 34, 50, 101),
    'model.backbone.width': _interval(0.0, 8.0, closed_lo=False),
    'model.backbone.output_stride': _choice(16, 32),
    'model.backbone.sync_bn': _boolean(),
    'model.head.hidden_dim': _integer(1),
    'model.head.output_dim': _integer(1),
    'model.kmeans.enabled': _boolean(),
    'model.kmeans.k': _integer(1),
    'model.kmeans.iterations': _integer(1),
    'model.kmeans.metric': _choice('cosine', 'euclidean'),
    'model.kmeans.dense': _boolean(),
    'model.attention.enabled': _boolean(),
    'model.attention.power': _interval(0.0, 16.0, closed_lo=False),
    'model.attention.residual': _boolean(),
    'model.moco.queue_size': _integer(1),
    'model.moco.temperature': _interval(0.0, _INF, closed_lo=False, closed_hi=False),
    'train.batch_size': _integer(1),
    'train.epochs': _interval(0.0, _INF, closed_lo=False, closed_hi=False),
    'train.steps': _integer(1),
    'train.steps_per_loop': _integer(1),
    'train.accumulate_steps': _integer(1),
    'train.checkpoint_every': _integer(1),
    'train.keep_checkpoints': _integer(1),
    'train.log_every': _integer(1),
    'train.image_every': _integer(1),
    'train.precision': _choice('auto', 'float32', 'mixed_bfloat16', 'mixed_float16'),
    'optim.base_lr': _interval(0.0, _INF, closed_lo=False, closed_hi=False),
    'optim.weight_decay': _interval(0.0, 1.0),
    'optim.momentum': _interval(0.0, 1.0, closed_hi=False),
    'optim.trust_coefficient': _interval(0.0, _INF, closed_lo=False, closed_hi=False),
    'optim.warmup_steps': _integer(0),
    'optim.tau_base': _interval(0.0, 1.0),
}


def _leaves(config, prefix=''):
  for key, value in config.items():
    name = prefix + key
    if isinstance(value, ml_collections.ConfigDict):
      yield from _leaves(value, name + '.')
    else:
      yield name, value


class ConfigError(ValueError):
  """A config field is unknown or holds a value outside its allowed range."""


def validate(config):
  """Raises ConfigError naming the first unknown or out-of-range field; returns the config."""
  leaves = dict(_leaves(config))
  for name in leaves:
    if name not in RULES:
      raise ConfigError(f'unknown config field {name!r}; known fields: {", ".join(sorted(RULES))}')
  for name, (ok, allowed) in RULES.items():
    if name not in leaves:
      raise ConfigError(f'config field {name!r} is missing; it must be {allowed}')
    if not ok(leaves[name]):
      raise ConfigError(f'config field {name!r} is {leaves[name]!r}; it must be {allowed}')
  if config.optim.warmup_steps > config.train.steps:
    raise ConfigError(f'config field \'optim.warmup_steps\' is {config.optim.warmup_steps}; it '
                      f'must be <= train.steps ({config.train.steps})')
  return config
