"""The config schema: every field with its default and its rule, validation, the schedule.

`FIELDS` is the one table; `defaults()` builds a ConfigDict from it and `validate` checks a
config against it, so a typo or an out-of-range value fails at start-up naming the field.
Defaults are the paper's MultiSiam (§4.1, METHOD.md); the recipes are in configs/.

Durations are in optimizer updates or in epochs, as a config prefers: one of `train.steps` and
`train.epochs`, at most one of `optim.warmup_steps` and `optim.warmup_epochs`. The driver turns
them into steps at run time (`resolve_schedule`), from the final config, so a batch-size override
keeps the epochs and `--config.train.steps=4` shortens any recipe (`override`).
"""

import copy
import importlib.util
import json
import math
import os
import sys

from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_dict
from ml_collections import config_flags
from ml_collections.config_flags import config_flags as config_file_flags  # its file parser


class ConfigError(ValueError):
  """A config field is unknown or holds a value outside its allowed range."""


# A rule is (ok: value -> bool, allowed: what ok accepts, in words).


def _choice(*names):
  # True == 1 in Python: a bool matches only a bool
  return (lambda v: any(v == n and isinstance(v, bool) == isinstance(n, bool) for n in names),
          'one of ' + ', '.join(repr(n) for n in names))


def _interval(lo, hi, closed_lo=True, closed_hi=True):
  def ok(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v >= lo if closed_lo else v > lo) and (v <= hi if closed_hi else v < hi))
  brackets = ('[' if closed_lo else '(') + f'{lo}, {hi}' + (']' if closed_hi else ')')
  return ok, 'a number in ' + brackets


def _above(lo, closed=False):
  return _interval(lo, math.inf, closed_lo=closed, closed_hi=False)


def _integer(lo, hi=None):
  def ok(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
  return ok, f'an integer >= {lo}' + (f' and <= {hi}' if hi is not None else '')


def _boolean():
  return lambda v: isinstance(v, bool), 'True or False'


def _string():
  return lambda v: isinstance(v, str), 'a string'


def _range_pair(lo, hi):
  def ok(v):
    return (isinstance(v, (tuple, list)) and len(v) == 2
            and all(isinstance(x, (int, float)) and lo < x <= hi for x in v) and v[0] <= v[1])
  return ok, f'a pair (low, high) with {lo} < low <= high <= {hi}'


def _size():
  def ok(v):
    return (isinstance(v, (tuple, list)) and len(v) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 32 for x in v))
  return ok, 'a pair (height, width) of integers >= 32'


def _names():
  return (lambda v: isinstance(v, str) and all(n.strip() for n in v.split(',')),
          'comma-separated names, none empty')


def _members(allowed):
  allowed = tuple(allowed)
  def ok(v):
    return (isinstance(v, (tuple, list)) and len(v) > 0 and len(set(v)) == len(v)
            and all(any(x == a and type(x) is type(a) for a in allowed) for x in v))
  return ok, 'a non-empty tuple of distinct values of ' + ', '.join(map(repr, allowed))


_CAMERAS = ('FRONT', 'FRONT_LEFT', 'FRONT_RIGHT', 'SIDE_LEFT', 'SIDE_RIGHT')  # Waymo's 1..5


def _unset_or(rule):
  ok, allowed = rule
  return lambda v: v is None or ok(v), allowed + ' or None'


# Unset defaults: typed, so that `--config.train.steps=4` can set them.
_UNSET_INT, _UNSET_FLOAT = config_dict.placeholder(int), config_dict.placeholder(float)

# name: (default, rule).
FIELDS = {
    'seed': (0, _integer(0)),
    'data.path': ('', _string()),  # folder, glob or comma-separated globs
    'data.format': ('auto', _choice('auto', 'folder', 'tfrecord', 'waymo_v1', 'waymo_v2', 'soda10m',
                                    'bdd100k', 'cityscapes', 'imagenet', 'tfds')),  # README: Datasets
    # Published layouts and TFDS: comma-separated splits; SODA10M: unlabeled.
    'data.split': ('train', _names()),
    # SODA10M's unlabel/image_N folders; the paper's SODA5M is 0, 2, 4, 6, 8.
    'data.soda_splits': (tuple(range(10)), _members(range(10))),
    'data.cameras': (_CAMERAS, _members(_CAMERAS + (1, 2, 3, 4, 5))),
    'data.image_size': (224, _integer(32)),
    'data.iou_threshold': (0.5, _interval(0.0, 1.0)),  # 0 = unconstrained pairs, as BYOL
    'data.max_pair_tries': (100, _integer(1)),
    'data.pair_candidates': (32, _integer(1, 1024)),  # candidate pairs drawn per vectorised try
    'data.area_range': ((0.08, 1.0), _range_pair(0.0, 1.0)),
    'data.aspect_ratio_range': ((3 / 4, 4 / 3), _range_pair(0.0, 100.0)),
    'data.color_strength': (1.0, _interval(0.0, 4.0)),  # scales the colour jitter; 1: BYOL's
    'data.min_image_size': (8, _integer(1)),
    'data.decode_and_crop': (True, _boolean()),
    # JPEG DCT downscaling 1/r kept >= image_size; 1 = full-resolution crop
    'data.max_decode_ratio': (8, _choice(1, 2, 4, 8)),
    'data.skip_corrupt': (False, _boolean()),
    'data.shuffle_buffer': (10_000, _integer(0)),
    'data.num_examples': (0, _integer(0)),  # images in data.path; 0: unknown (epochs need it)
    'data.service_address': ('', _string()),  # tf.data service dispatcher, e.g. grpc://host:5050
    'model.method': ('multisiam', _choice('multisiam', 'byol', 'multisiam_moco')),
    'model.loss_lambda': (0.5, _interval(0.0, 1.0)),  # eq. 11
    'model.alignment': ('offset', _choice('offset', 'roi', 'none')),
    'model.offset_normalize': (True, _boolean()),
    'model.backbone.depth': (50, _choice(18, 34, 50, 101)),
    'model.backbone.width': (1.0, _interval(0.0, 8.0, closed_lo=False)),
    'model.backbone.output_stride': (32, _choice(16, 32)),
    'model.backbone.sync_bn': (False, _boolean()),
    'model.head.hidden_dim': (4096, _integer(1)),
    'model.head.output_dim': (256, _integer(1)),
    'model.kmeans.enabled': (True, _boolean()),
    'model.kmeans.k': (3, _integer(1)),
    'model.kmeans.iterations': (10, _integer(1)),
    'model.kmeans.metric': ('cosine', _choice('cosine', 'euclidean')),
    'model.kmeans.dense': (False, _boolean()),  # Table 3b "dense clustering"
    'model.attention.enabled': (True, _boolean()),
    'model.attention.power': (2, _interval(0.0, 16.0, closed_lo=False)),  # eq. 9
    'model.attention.residual': (False, _boolean()),  # Table 9
    'model.moco.queue_size': (65536, _integer(1)),
    'model.moco.temperature': (0.2, _above(0.0)),  # App. B.2
    # The global batch of one forward pass; an update sees batch_size * accumulate_steps images.
    'train.batch_size': (1024, _integer(1)),
    'train.steps': (_UNSET_INT, _unset_or(_integer(1))),  # optimizer updates; or train.epochs
    'train.epochs': (_UNSET_FLOAT, _unset_or(_above(0.0))),
    'train.steps_per_loop': (100, _integer(1)),
    'train.accumulate_steps': (1, _integer(1)),
    'train.checkpoint_every': (1000, _integer(1)),
    'train.keep_checkpoints': (3, _integer(1)),
    'train.log_every': (100, _integer(1)),
    'train.image_every': (5000, _integer(1)),
    'train.precision': ('auto', _choice('auto', 'float32', 'mixed_bfloat16', 'mixed_float16')),
    'optim.name': ('lars', _choice('lars', 'sgd', 'adamw')),  # train/optimizers.py
    'optim.base_lr': (1.0, _above(0.0)),  # lr = base_lr * batch_size * accumulate_steps / 256
    'optim.weight_decay': (1e-5, _interval(0.0, 1.0)),
    'optim.momentum': (0.9, _interval(0.0, 1.0, closed_hi=False)),
    'optim.trust_coefficient': (1e-3, _above(0.0)),  # lars only
    'optim.warmup_steps': (_UNSET_INT, _unset_or(_integer(0))),  # or warmup_epochs; neither: 0
    'optim.warmup_epochs': (_UNSET_FLOAT, _unset_or(_above(0.0, closed=True))),
    'optim.tau_base': (0.996, _interval(0.0, 1.0)),
    # Online dense probe (eval/online.py): a labelled folder (images/, labels/) split in halves;
    # '' = none.
    'eval.data': ('', _string()),
    'eval.every': (5000, _integer(1)),  # steps
    'eval.num_classes': (0, _integer(0)),  # class ids 0..N-1; a folder needs it
    'eval.ignore_index': (255, _integer(0, 255)),
    'eval.size': ((224, 224), _size()),  # images and labels resized to (H, W)
    'eval.epochs': (10, _integer(1)),  # of the probe on cached features
}

# (in steps, in epochs): the two ways to give one duration.
_DURATIONS = (('train.steps', 'train.epochs'), ('optim.warmup_steps', 'optim.warmup_epochs'))


def fields_help(prefix=''):
  """One line per field under `prefix` (all: ''): its name relative to it, default and rule;
  what a script's --help lists under its config flag."""
  lines = []
  for name, (default, (_, allowed)) in FIELDS.items():
    if name.startswith(prefix):
      default = default.get() if isinstance(default, config_dict.FieldReference) else default
      lines.append(f'{name[len(prefix):]}={default!r}: {allowed}')
  return '\n'.join(lines)


def _config_flag_help():
  """The help of a script's --config flag: the file, then every field an override may set."""
  return ('Experiment config file[:arg] (e.g. configs/demo.py), or a run\'s config.json to run '
          'it again; set its fields with '
          '--config.FIELD=VALUE, of (default: rule):\n' + fields_help())


def defaults():
  """A ConfigDict of every field at its default."""
  c = ml_collections.ConfigDict()
  for name, (default, _) in FIELDS.items():
    *parents, leaf = name.split('.')
    node = c
    for parent in parents:
      if parent not in node:
        node[parent] = ml_collections.ConfigDict()
      node = node[parent]
    node[leaf] = copy.deepcopy(default)  # a placeholder is a mutable reference: one per config
  return c


def override(config, overrides):
  """Applies dotted overrides ({'train.batch_size': 512}) to `config` in place; returns it.

  A duration given in one unit replaces the config's in the other: 'train.steps' unsets
  'train.epochs' and the reverse, likewise the warmup, so that a recipe in epochs runs for 4
  steps with `--config.train.steps=4` alone. Both units of one duration stay an error.
  """
  for pair in _DURATIONS:
    for given, other in (pair, pair[::-1]):
      if given in overrides and other not in overrides:
        config.update_from_flattened_dict({other: None})
  config.update_from_flattened_dict(overrides)
  return config


RUN_RECORD = 'run'  # a run's config.json: what the run resolved, beside the config's fields


def from_json(path):
  """The config of a run's config.json, to run it again as it ran: its saved fields, with the
  precision `auto` chose in place of `auto`."""
  with open(path) as f:
    fields = json.load(f)
  run = fields.pop(RUN_RECORD, {})
  flat = {k: tuple(v) if isinstance(v, list) else v for k, v in flatten(fields).items()}
  if flat.get('train.precision') == 'auto' and run.get('precision'):
    flat['train.precision'] = run['precision']
  return override(defaults(), flat)


class _FileParser(config_file_flags.ConfigFileFlagParser):
  """--config: a config file (`configs/x.py[:arg]`) or a run's config.json (from_json)."""

  def parse(self, path):
    if not path.endswith('.json'):
      return super().parse(path)
    config = from_json(path)
    config.lock()
    return config


def define_config_flag(name='config'):
  """The --config flag: a config file[:arg] or a run's config.json, with --config.a.b=value."""
  holder = config_flags.DEFINE_config_file(name, None, _config_flag_help())
  flags.FLAGS[name].parser = _FileParser(name)
  # A key flag of the running script, which --help lists (it shows the main module's flags).
  flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
  return holder


def from_flag(holder):
  """The validated config of a `config_flags.DEFINE_config_file` flag: its file's config with
  the command line's `--config.a.b=value` applied through `override`."""
  overrides = config_flags.get_override_values(flags.FLAGS[holder.name])
  return validate(override(holder.value, overrides))


def load(path):
  """The config file at `path` as a module, loaded as `--config` loads it (configs/ is no
  package): how one config file builds on another."""
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def flatten(config):
  """{'a.b': value} of a ConfigDict or of its JSON form."""
  out = {}
  for key, value in config.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      out.update({f'{key}.{k}': v for k, v in flatten(value).items()})
    else:
      out[key] = value
  return out


def validate(config):
  """Raises ConfigError naming the first unknown or out-of-range field; returns the config."""
  leaves = flatten(config)
  for name in leaves:
    if name not in FIELDS:
      raise ConfigError(f'unknown config field {name!r}; known fields: {", ".join(sorted(FIELDS))}')
  for name, (_, (ok, allowed)) in FIELDS.items():
    if name not in leaves:
      raise ConfigError(f'config field {name!r} is missing; it must be {allowed}')
    if not ok(leaves[name]):
      raise ConfigError(f'config field {name!r} is {leaves[name]!r}; it must be {allowed}')
  if config.eval.data and not config.eval.num_classes:
    raise ConfigError(f'config field \'eval.num_classes\' is 0; eval.data={config.eval.data!r} '
                      'needs the number of classes')
  if not needs_count(config):
    _schedule(config)  # else epochs wait for the driver to count the source (loop.train)
  _check_map_size(config)
  return config


def needs_count(config):
  """Whether a duration is in epochs while data.num_examples is 0 (unknown): the source must be
  counted before the schedule resolves."""
  return not config.data.num_examples and (config.train.epochs is not None
                                           or config.optim.warmup_epochs is not None)


def map_side(config):
  """Side of the backbone's C5 map (and of the 2D branch's maps): each stride-2 layer halves the
  view, rounding up (torchvision's padding k // 2)."""
  side = config.data.image_size
  for _ in range(int(math.log2(config.model.backbone.output_stride))):
    side = (side + 1) // 2
  return side


def _check_map_size(config):
  """A 1x1 map leaves the 2D branch one pixel; K-means needs at least K pixels."""
  side, m = map_side(config), config.model
  size = (f'data.image_size {config.data.image_size} at model.backbone.output_stride '
          f'{m.backbone.output_stride} gives a {side}x{side} map')
  if side < 2 and m.method != 'byol':
    raise ConfigError(f'config fields \'data.image_size\' and \'model.backbone.output_stride\': '
                      f'{size}; the dense branch needs at least 2x2')
  if m.kmeans.enabled and m.method != 'byol' and m.kmeans.k > side * side:
    raise ConfigError(f'config field \'model.kmeans.k\' is {m.kmeans.k}, more clusters than '
                      f'the {side * side} map pixels ({size})')


def check_replica_batch(config, replicas):
  """Raises ConfigError unless every replica gets a batch of at least 2: the 1D branch's batch
  norm over one image normalises the projection to 0."""
  if config.train.batch_size < 2 * replicas:
    raise ConfigError(
        f'config field \'train.batch_size\' is {config.train.batch_size}: '
        f'{config.train.batch_size / replicas:g} image(s) per replica over {replicas} '
        f'replica(s); it must be at least {2 * replicas} (2 per replica)')


def _in_steps(config, steps_field, epochs_field):
  """The duration in optimizer updates, None if neither field is set."""
  steps, epochs = _get(config, steps_field), _get(config, epochs_field)
  if steps is not None and epochs is not None:
    raise ConfigError(f'config fields {steps_field!r} ({steps}) and {epochs_field!r} ({epochs}) '
                      'are both set; set one of them')
  if epochs is None:
    return steps
  if not config.data.num_examples:
    raise ConfigError(f'config field {epochs_field!r} needs \'data.num_examples\', the number '
                      'of training images; it is 0')
  return int(epochs * config.data.num_examples // _images_per_update(config))


def _get(config, name):
  for key in name.split('.'):
    config = config[key]
  return config


def _images_per_update(config):
  return config.train.batch_size * config.train.accumulate_steps


def _schedule(config):
  """(steps, warmup steps as asked for) of a config; raises ConfigError if they cannot be had."""
  steps = _in_steps(config, 'train.steps', 'train.epochs')
  if steps is None:
    raise ConfigError('config fields \'train.steps\' and \'train.epochs\' are both None; set one')
  if steps < 1:
    raise ConfigError(f'config field \'train.epochs\' ({config.train.epochs}) gives {steps} '
                      f'updates of {_images_per_update(config)} images; it must give at least 1')
  return steps, _in_steps(config, 'optim.warmup_steps', 'optim.warmup_epochs') or 0


def resolve_schedule(config):
  """A copy of `config` whose durations are in optimizer updates (the epoch fields unset):

    images per update = train.batch_size * train.accumulate_steps
    train.steps = train.epochs * data.num_examples // images per update, likewise the warmup.

  A warmup longer than the run is cut to the run, with a warning. The result is logged.
  """
  steps, warmup = _schedule(config)
  if warmup > steps:
    logging.warning('the warmup (%d steps) is longer than the run: cut to %d steps', warmup, steps)
    warmup = steps
  logging.info('schedule: %d steps of %d images (train.epochs %s), warmup %d steps '
               '(optim.warmup_epochs %s)', steps, _images_per_update(config), config.train.epochs,
               warmup, config.optim.warmup_epochs)
  resolved = copy.deepcopy(config)
  resolved.update_from_flattened_dict({'train.steps': steps, 'train.epochs': None,
                                       'optim.warmup_steps': warmup, 'optim.warmup_epochs': None})
  return resolved
