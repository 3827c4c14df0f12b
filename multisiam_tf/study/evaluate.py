"""A study's evaluations: every run's backbone at its evaluation steps, and a random init per
seed, fine-tuned (eval/finetune.py) and linearly probed (eval/probe.py) on one labelled pair of
folders, with the run's seed.

The labelled images are decoded once for all evaluations. Each score goes to
`<workdir>/study/<kind>-<step>.json` (finetune.run's or probe.run's record, with the options and
the data that made it) when it is done, so a restarted study evaluates only what is missing or
was made with other options or other data.
"""

import json
import os
from typing import NamedTuple

from absl import logging
import keras

from multisiam_tf.eval import finetune
from multisiam_tf.eval import probe
from multisiam_tf.study import runs as runs_lib

KINDS = ('finetune', 'probe')
RESULTS = 'study'


class Data(NamedTuple):
  train: tuple  # (uint8 images [N, H, W, 3], uint8 labels [N, H, W])
  val: tuple
  class_names: list


class DataSpec(NamedTuple):
  """The labelled folders at size (H, W): the first `limit` images of each, the training ones
  cut to `train_images` (labelled.spread)."""
  train: str
  val: str
  size: tuple
  num_classes: int
  limit: int = None
  train_images: int = None


def load_data(spec):
  train, val, names, _, _ = probe.load_splits(
      spec.size, train=spec.train, val=spec.val, num_classes=spec.num_classes, limit=spec.limit,
      train_images=spec.train_images)
  return Data(train, val, names)


def result_path(run, kind, step):
  return os.path.join(run.workdir, RESULTS, f'{kind}-{step}.json')


def _made_by(options, spec):
  """What a stored record must have been made with to be reused, as JSON reads it back."""
  return json.loads(json.dumps({'study_options': options, 'study_data': spec._asdict()}))


def read_result(run, kind, step, options, spec):
  """The stored record, None if there is none or it was made with other options or data."""
  path = result_path(run, kind, step)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    result = json.load(f)
  made_by = _made_by(options, spec)
  return result if all(result.get(k) == v for k, v in made_by.items()) else None


def _write(result, path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(result, f, indent=2)
  os.replace(path + '.tmp', path)  # a killed study leaves no partial record


def _architecture(config):
  b = config.model.backbone
  return b.depth, b.width, b.output_stride


def evaluate(run, step, kind, data, options):
  """The record of one evaluation; options: finetune.run's or probe.run's keyword arguments."""
  keras.backend.clear_session()  # the previous evaluation's models
  if run.command:
    backbone, architecture = probe.load_backbone(run.workdir, step)
  else:
    architecture = _architecture(run.config)
    backbone = probe.random_backbone(architecture, run.seed)
  common = dict(seed=run.seed, class_names=data.class_names, **options)
  if kind == 'finetune':
    return finetune.run(backbone, architecture, data.train, data.val, **common)
  if kind == 'probe':
    return probe.run(probe.keras_features(backbone), data.train, data.val, **common)
  raise ValueError(f'unknown evaluation {kind!r}; known: {", ".join(KINDS)}')


def evaluate_all(runs, options, spec, curve_kinds=('probe',)):
  """{(run name, seed, kind, step): mIoU} of every run for each kind of `options` ({kind: its
  options}) on the data of DataSpec `spec`: at the last evaluation step, and at the earlier ones
  (the learning curve) for `curve_kinds`; where the checkpoint exists. Evaluates what is not yet
  stored; the data are read only when an evaluation has to run.
  """
  scores, loaded = {}, None
  for run in runs:
    for step in run.eval_steps:
      if run.command and not runs_lib.checkpoint_exists(run, step):
        logging.warning('%s has no checkpoint of step %d: not evaluated there', run.workdir, step)
        continue
      for kind, kind_options in options.items():
        if step != run.eval_steps[-1] and kind not in curve_kinds:
          continue
        result = read_result(run, kind, step, kind_options, spec)
        if result is None:
          loaded = loaded or load_data(spec)
          logging.info('evaluating %s at step %d: %s', run.workdir, step, kind)
          result = dict(evaluate(run, step, kind, loaded, kind_options),
                        **_made_by(kind_options, spec))
          _write(result, result_path(run, kind, step))
        scores[run.name, run.seed, kind, step] = result['miou']
  return scores
