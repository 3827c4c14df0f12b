"""Config files load, validate, and reject bad values naming the field; schedules follow
overrides."""

import logging
import os
import subprocess
import sys

import pytest

from multisiam_tf import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAYMO_IMAGES = 790_000


def load(path, arg=''):
  return config_lib.load(os.path.join(ROOT, path)).get_config(arg)


@pytest.mark.parametrize('path,arg', [
    ('configs/demo.py', ''),
    ('configs/camvid.py', ''),
    ('configs/camvid.py', 'byol'),
    ('configs/camvid.py', 'byol_iou'),
    ('configs/camvid.py', 'multisiam,lars'),
    ('configs/multisiam_waymo.py', ''),
    ('configs/multisiam_waymo.py', 'ablation'),
    ('configs/multisiam_waymo.py', 'small'),
    ('configs/byol_waymo.py', ''),
    ('configs/ablations_waymo.py', 'roi,small'),
    ('configs/multisiam_soda5m.py', ''),
    ('configs/multisiam_soda5m.py', 'small'),
    ('configs/multisiam_imagenet.py', ''),
    ('configs/multisiam_imagenet.py', 'small'),
])
def test_shipped_configs_validate(path, arg):
  config_lib.validate(load(path, arg))


def test_camvid_trains_with_adamw_and_lars_changes_the_optimiser_only():
  adamw, lars = load('configs/camvid.py', 'byol'), load('configs/camvid.py', 'byol,lars')
  differ = {k for k, v in adamw.to_dict().items() if v != lars.to_dict()[k]}
  assert differ == {'optim'}
  assert (adamw.optim.name, adamw.optim.base_lr, adamw.optim.weight_decay) == ('adamw', 0.008, 0.05)
  assert (lars.optim.name, lars.optim.base_lr, lars.optim.weight_decay) == ('lars', 1.0, 1e-5)
  assert {k: v for k, v in adamw.optim.items() if k not in ('name', 'base_lr', 'weight_decay')} == {
      k: v for k, v in lars.optim.items() if k not in ('name', 'base_lr', 'weight_decay')}
  with pytest.raises(config_lib.ConfigError, match='METHOD,lars'):
    load('configs/camvid.py', 'byol,sgd')


def test_paper_defaults():
  c = load('configs/multisiam_waymo.py')
  assert (c.model.backbone.depth, c.data.image_size, c.train.batch_size) == (50, 224, 1024)
  resolved = config_lib.resolve_schedule(c)
  assert resolved.train.steps == 325 * WAYMO_IMAGES // 1024
  assert resolved.optim.warmup_steps == 10 * WAYMO_IMAGES // 1024
  assert (c.optim.base_lr, c.optim.weight_decay, c.optim.tau_base) == (1.0, 1e-5, 0.996)
  assert (c.data.iou_threshold, c.model.kmeans.k, c.model.loss_lambda) == (0.5, 3, 0.5)
  assert c.model.alignment == 'offset' and c.model.attention.enabled


def test_each_paper_config_reads_its_dataset_for_its_epochs():
  assert load('configs/multisiam_waymo.py').data.format == 'waymo_v1'
  soda = load('configs/multisiam_soda5m.py')
  assert (soda.data.format, soda.data.split, soda.data.soda_splits) == (
      'soda10m', 'unlabeled', (0, 2, 4, 6, 8))
  assert config_lib.resolve_schedule(soda).train.steps == 55 * 5_000_000 // 1024
  imagenet = load('configs/multisiam_imagenet.py')
  resolved = config_lib.resolve_schedule(imagenet)
  assert (imagenet.data.format, resolved.train.steps) == ('imagenet', 200 * 1_281_167 // 1024)
  assert resolved.optim.warmup_steps == 10 * 1_281_167 // 1024
  # The ablation variant keeps its own 150 epochs on either set.
  assert load('configs/multisiam_imagenet.py', 'ablation').train.epochs == 150


def test_ablation_schedule_accumulates_to_4096():
  c = load('configs/multisiam_waymo.py', 'ablation')
  assert c.train.batch_size * c.train.accumulate_steps == 4096
  assert config_lib.resolve_schedule(c).train.steps == 150 * WAYMO_IMAGES // 4096
  assert c.optim.base_lr == 0.3 and c.optim.tau_base == 0.99 and c.data.area_range[0] == 0.08


def test_byol_is_global_branch_without_iou():
  c = load('configs/byol_waymo.py')
  assert c.model.method == 'byol' and c.data.iou_threshold == 0.0


def test_every_ablation_is_a_distinct_valid_config():
  module = config_lib.load(os.path.join(ROOT, 'configs/ablations_waymo.py'))
  seen = set()
  for name in module.ABLATIONS:
    c = config_lib.validate(module.get_config(name))
    seen.add(c.to_json(sort_keys=True))
  assert len(seen) == len(module.ABLATIONS)


@pytest.mark.parametrize('field,value,message', [
    ('data.iou_threshold', 1.5, "'data.iou_threshold' is 1.5"),
    ('data.iou_threshold', -0.1, "'data.iou_threshold' is -0.1"),
    ('model.kmeans.k', 0, "'model.kmeans.k' is 0"),
    ('model.alignment', 'bilinear', "'model.alignment' is 'bilinear'"),
    ('model.method', 'simclr', "'model.method' is 'simclr'"),
    ('model.backbone.depth', 42, "'model.backbone.depth' is 42"),
    ('train.precision', 'fp8', "'train.precision' is 'fp8'"),
    ('optim.base_lr', float('nan'), "'optim.base_lr' is nan"),
    ('train.batch_size', True, "'train.batch_size' is True"),
    ('data.max_decode_ratio', 3, "'data.max_decode_ratio' is 3"),
    ('data.max_decode_ratio', True, "'data.max_decode_ratio' is True"),
    ('data.format', 'kitti', "'data.format' is 'kitti'"),
    ('data.cameras', ('FRONT', 'REAR'), "'data.cameras' is ('FRONT', 'REAR')"),
    ('data.cameras', (), "'data.cameras' is ()"),
    ('data.soda_splits', (0, 10), "'data.soda_splits' is (0, 10)"),
    ('data.split', 'train,', "'data.split' is 'train,'"),
    ('data.num_examples', -1, "'data.num_examples' is -1"),
    ('eval.size', (16, 64), "'eval.size' is (16, 64)"),
    ('eval.every', 0, "'eval.every' is 0"),
])
def test_bad_value_names_field_and_range(field, value, message):
  c = config_lib.override(load('configs/demo.py'), {field: value})
  with pytest.raises(config_lib.ConfigError, match='must be') as error:
    config_lib.validate(c)
  assert message in str(error.value)


def test_online_eval_of_a_folder_needs_its_class_count():
  c = config_lib.override(load('configs/demo.py'), {'eval.data': '/labelled'})
  with pytest.raises(config_lib.ConfigError, match="'eval.num_classes' is 0"):
    config_lib.validate(c)
  config_lib.validate(config_lib.override(c, {'eval.num_classes': 9}))


def test_unknown_field_is_rejected():
  c = load('configs/demo.py')
  c.model.kmeans.kk = 3
  with pytest.raises(config_lib.ConfigError, match="unknown config field 'model.kmeans.kk'"):
    config_lib.validate(c)


def test_unknown_config_argument_is_rejected():
  with pytest.raises(config_lib.ConfigError, match='unknown config argument'):
    load('configs/multisiam_waymo.py', 'tiny')
  with pytest.raises(config_lib.ConfigError, match='unknown ablation'):
    load('configs/ablations_waymo.py', 'nope')


def test_batch_size_and_epochs_overrides_change_the_steps():
  def steps(overrides):
    c = config_lib.override(load('configs/multisiam_waymo.py'), overrides)
    return config_lib.resolve_schedule(config_lib.validate(c)).train.steps
  assert steps({'train.batch_size': 512}) == 325 * WAYMO_IMAGES // 512
  assert steps({'train.epochs': 100}) == 100 * WAYMO_IMAGES // 1024
  assert steps({'train.accumulate_steps': 2}) == 325 * WAYMO_IMAGES // 2048


def test_steps_alone_shortens_a_recipe_in_epochs_and_cuts_its_warmup(caplog):
  c = config_lib.override(load('configs/demo.py'), {'train.steps': 4})
  with caplog.at_level(logging.WARNING):
    resolved = config_lib.resolve_schedule(config_lib.validate(c))
  assert (resolved.train.steps, resolved.optim.warmup_steps) == (4, 4)  # 16 warmup steps cut
  assert 'the warmup (16 steps) is longer than the run: cut to 4 steps' in caplog.text
  assert resolved.train.epochs is None and resolved.optim.warmup_epochs is None
  assert config_lib.resolve_schedule(resolved).train.steps == 4  # resolving again keeps it


def test_warmup_in_steps_replaces_the_recipes_warmup_in_epochs():
  c = config_lib.override(load('configs/demo.py'), {'optim.warmup_steps': 3})
  resolved = config_lib.resolve_schedule(config_lib.validate(c))
  assert (resolved.train.steps, resolved.optim.warmup_steps) == (160, 3)


@pytest.mark.parametrize('steps_field,epochs_field', [
    ('train.steps', 'train.epochs'), ('optim.warmup_steps', 'optim.warmup_epochs')])
def test_a_duration_in_both_units_is_an_error_naming_both(steps_field, epochs_field):
  c = config_lib.override(load('configs/demo.py'), {steps_field: 4, epochs_field: 2})
  with pytest.raises(config_lib.ConfigError, match='both set') as error:
    config_lib.validate(c)
  assert repr(steps_field) in str(error.value) and repr(epochs_field) in str(error.value)


def test_a_run_needs_a_duration():
  c = config_lib.override(load('configs/demo.py'), {'train.epochs': None})
  with pytest.raises(config_lib.ConfigError, match="'train.steps' and 'train.epochs'"):
    config_lib.validate(c)


_FROM_COMMAND_LINE = """
import sys
from absl import flags
from ml_collections import config_flags
from multisiam_tf import config as config_lib
holder = config_flags.DEFINE_config_file('config')
flags.FLAGS(sys.argv)
try:
  print(config_lib.resolve_schedule(config_lib.from_flag(holder)).train.steps)
except config_lib.ConfigError as e:
  print(e)
"""


@pytest.mark.parametrize('flags,printed', [
    (['--config.train.steps=4'], '4'),
    (['--config.train.batch_size=512'], str(325 * WAYMO_IMAGES // 512)),
    (['--config.train.steps=4', '--config.train.epochs=3'], 'both set'),
])
def test_command_line_durations(flags, printed):
  result = subprocess.run(
      [sys.executable, '-c', _FROM_COMMAND_LINE,
       f'--config={os.path.join(ROOT, "configs", "multisiam_waymo.py")}', *flags],
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert printed in result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize('overrides, message', [
    ({'data.image_size': 32, 'model.backbone.output_stride': 32},
     r"'data.image_size' and 'model.backbone.output_stride': .* gives a 1x1 map"),
    ({'data.image_size': 32, 'model.backbone.output_stride': 16, 'model.kmeans.k': 5},
     r"'model.kmeans.k' is 5, more clusters than the 4 map pixels .* a 2x2 map"),
])
def test_maps_too_small_for_the_dense_branch_are_rejected(overrides, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config_lib.override(config_lib.defaults(), {'train.steps': 1,
                                                                    **overrides}))


def test_per_replica_batch_below_2_is_rejected_naming_the_replicas():
  config = config_lib.validate(config_lib.override(config_lib.defaults(), {
      'train.steps': 1, 'train.batch_size': 4}))
  config_lib.check_replica_batch(config, 2)
  with pytest.raises(config_lib.ConfigError, match=r"'train.batch_size' is 4: 1 image\(s\) per "
                                                   r'replica over 4 replica\(s\).* at least 8'):
    config_lib.check_replica_batch(config, 4)
