r"""Pretrains the PyTorch BYOL peer at a config's scale and scores it beside a random init (and a
run of this project) by the same linear probe and the same fine-tuning.

  python scripts/compare_reference.py --config configs/demo.py \
      --config.model.method=byol --config.data.iou_threshold=0 \
      --config.data.path=../shared/data/camvid_train/images --config.data.num_examples=367 \
      --config.train.batch_size=32 --config.train.steps=300 --config.optim.warmup_steps=30 \
      --train ../shared/data/camvid_train --val ../shared/data/camvid_val \
      --num_classes 11 --ignore_index 11 --size 180,240 --crop 128,128 --out runs/peer \
      [--workdir runs/ours]   # our own pretraining of the same config, scored beside

The peer (multisiam_tf/reference/, `make torch-reference`) takes the config's backbone shape,
views, heads, batch, steps, warmup, optimiser, lr, weight decay, tau and seed; its LARS is
solo-learn's (--peer_eta), and --peer_optimizer picks another. Writes OUT/peer.pt (torch),
OUT/keras/backbone.weights.h5 (for scripts/probe.py and scripts/finetune.py --keras_weights) and
OUT/compare.json; prints the probe's and the fine-tuning's per-class IoU side by side.
--peer_checkpoint reuses a peer.pt.
"""

import dataclasses
import os

from absl import app
from absl import flags
import numpy as np
import torch

from multisiam_tf import cli
from multisiam_tf import config as config_lib
from multisiam_tf.eval import finetune
from multisiam_tf.eval import probe
from multisiam_tf.export import keras_weights
from multisiam_tf.models import resnet
from multisiam_tf.reference import torch_byol

_CONFIG = config_lib.define_config_flag('config')
_OUT = flags.DEFINE_string('out', None, 'Folder for peer.pt, keras/ and compare.json.')
_PEER_CHECKPOINT = flags.DEFINE_string('peer_checkpoint', None, 'A peer.pt to score instead '
                                       'of pretraining one.')
_PEER_OPTIMIZER = flags.DEFINE_enum('peer_optimizer', None, torch_byol.OPTIMIZERS,
                                    'The peer\'s optimizer (default: the config\'s optim.name).')
_PEER_ETA = flags.DEFINE_float('peer_eta', 0.02, 'The peer\'s LARS trust coefficient.')
_PEER_THREADS = flags.DEFINE_integer(
    'peer_threads', 0, 'torch.set_num_threads for the peer (0: torch\'s default, one per core); '
    '1 is several times faster on cores shared with other processes.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'A run of this project to score beside.')
_TRAIN = flags.DEFINE_string('train', None, 'Labelled folder the evaluations train on.')
_VAL = flags.DEFINE_string('val', None, 'Labelled folder they are scored on.')
_NUM_CLASSES = flags.DEFINE_integer('num_classes', None, 'Class ids 0..N-1 count.')
_IGNORE_INDEX = flags.DEFINE_integer('ignore_index', 255, 'Label value to ignore.')
_SIZE = flags.DEFINE_list('size', ['180', '240'], 'H,W both splits are resized to.')
_CROP = flags.DEFINE_list('crop', ['128', '128'], 'H,W of the fine-tuning crops.')
_LIMIT = flags.DEFINE_integer('limit', None, 'Use only the first N images of each folder.')
_FINETUNE_STEPS = flags.DEFINE_integer('finetune_steps', 600, 'Fine-tuning steps.')
_FINETUNE_LR = flags.DEFINE_float('finetune_lr', 0.01, 'Fine-tuning peak lr (poly decay).')
_PROBE_EPOCHS = flags.DEFINE_integer('probe_epochs', 30, 'Linear probe epochs.')
flags.mark_flags_as_required(['config', 'out', 'train', 'val', 'num_classes'])


def peer_backbone(config):
  """(Keras ResNet holding the peer's online backbone, recipe, losses): pretrained here or read
  from --peer_checkpoint."""
  path = _PEER_CHECKPOINT.value
  if not path:
    if config.data.format not in ('auto', 'folder'):
      raise app.UsageError(f'data.format is {config.data.format!r}; the peer reads a folder')
    chosen = {'optimizer': _PEER_OPTIMIZER.value} if _PEER_OPTIMIZER.value else {}
    recipe = torch_byol.Recipe.from_config(config, eta=_PEER_ETA.value, **chosen)
    if _PEER_THREADS.value:
      torch.set_num_threads(_PEER_THREADS.value)
    model, losses = torch_byol.pretrain(recipe, torch_byol.load_images(config.data.path))
    path = os.path.join(_OUT.value, 'peer.pt')
    torch_byol.save(model, recipe, losses, path)
  state, recipe, losses = torch_byol.load_backbone_state(path)
  backbone = resnet.ResNet(recipe.depth, width=recipe.width, output_stride=recipe.output_stride)
  resnet.load_torchvision_weights(backbone, state)
  keras_weights.export_keras(backbone, os.path.join(_OUT.value, 'keras'))
  return backbone, recipe, losses


def evaluate(backbone, architecture, train, val, names, seed):
  """The same linear probe and fine-tuning for every backbone."""
  common = dict(num_classes=_NUM_CLASSES.value, ignore_index=_IGNORE_INDEX.value, seed=seed,
                class_names=names)
  return {
      'probe': probe.run(probe.keras_features(backbone), train, val, epochs=_PROBE_EPOCHS.value,
                         **common),
      'finetune': finetune.run(backbone, architecture, train, val,
                               crop=tuple(map(int, _CROP.value)), steps=_FINETUNE_STEPS.value,
                               lr=_FINETUNE_LR.value, **common),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = cli.config_or_exit(_CONFIG)
  os.makedirs(_OUT.value, exist_ok=True)
  train, val, names, _, _ = probe.load_splits(
      tuple(map(int, _SIZE.value)), train=_TRAIN.value, val=_VAL.value,
      num_classes=_NUM_CLASSES.value, ignore_index=_IGNORE_INDEX.value, limit=_LIMIT.value)
  peer, recipe, losses = peer_backbone(config)
  architecture, seed = recipe.architecture, recipe.seed  # pretraining and evaluation alike
  backbones = {'peer BYOL': peer, 'random init': probe.random_backbone(architecture, seed)}
  if _WORKDIR.value:
    backbones['ours'], ours_architecture = probe.load_backbone(_WORKDIR.value)
    if ours_architecture != architecture:
      raise app.UsageError(f'--workdir has architecture {ours_architecture}, the peer '
                           f'{architecture}')
  results = {name: evaluate(b, architecture, train, val, names, seed)
             for name, b in backbones.items()}
  tenth = max(1, len(losses) // 10)
  result = {'recipe': dataclasses.asdict(recipe), 'config': config.to_dict(),
            'peer_loss': {'first_tenth': float(np.mean(losses[:tenth])),
                          'last_tenth': float(np.mean(losses[-tenth:]))},
            'results': results}
  for kind in ('probe', 'finetune'):
    print(f'\n{kind}\n' + probe.table({name: r[kind] for name, r in results.items()}))
  probe.write_json(result, os.path.join(_OUT.value, 'compare.json'))


if __name__ == '__main__':
  cli.run(main)
