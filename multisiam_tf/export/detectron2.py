"""The backbone as a Detectron2 `.pkl`, the format MoCo and DetCo hand to Detectron2.

The paper fine-tunes in Detectron2 (Mask R-CNN R50-FPN, FCN-16s; METHOD.md section 7). The file
is a pickle of {"model": {name: numpy array}, "__author__": "multisiam_tf",
"matching_heuristics": True} with Detectron2's ResNet names and PyTorch layouts:

  torchvision            Detectron2
  conv1, bn1             stem.conv1, stem.conv1.norm
  layerS.B.convK, bnK    res{S+1}.B.convK, res{S+1}.B.convK.norm
  layerS.B.downsample.0  res{S+1}.B.shortcut
  layerS.B.downsample.1  res{S+1}.B.shortcut.norm

Kernels are OIHW (Keras' HWIO transposed 3, 2, 0, 1); BN keeps weight, bias, running_mean,
running_var. Detectron2 config keys to set are in docs/EXPORT.md.
"""

import os
import pickle
import re

import numpy as np
import tensorflow as tf

from multisiam_tf.models import resnet

_STEM = {'conv1': 'stem.conv1', 'bn1': 'stem.conv1.norm'}
_BLOCK = re.compile(r'layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.0|downsample\.1)$')


def detectron2_name(torchvision_name):
  """'layer1.0.bn2.running_mean' -> 'res2.0.conv2.norm.running_mean'."""
  module, variable = torchvision_name.rsplit('.', 1)
  if module in _STEM:
    return f'{_STEM[module]}.{variable}'
  stage, block, part = _BLOCK.match(module).groups()
  part = {'downsample.0': 'shortcut', 'downsample.1': 'shortcut.norm'}.get(part, part)
  part = re.sub(r'^bn(\d)$', r'conv\1.norm', part)
  return f'res{int(stage) + 1}.{block}.{part}.{variable}'


def detectron2_weights(backbone):
  """{Detectron2 name: float32 numpy array} of `backbone`, kernels OIHW."""
  weights = {}
  for name, variable in resnet.torchvision_names(backbone):
    value = np.asarray(variable, dtype=np.float32)
    weights[detectron2_name(name)] = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value
  return weights


def export_detectron2(backbone, path):
  """Writes the `.pkl` that Detectron2's MODEL.WEIGHTS loads; returns `path`."""
  payload = {'model': detectron2_weights(backbone), '__author__': 'multisiam_tf',
             'matching_heuristics': True}
  tf.io.gfile.makedirs(os.path.dirname(path) or '.')
  with tf.io.gfile.GFile(path, 'wb') as f:
    pickle.dump(payload, f)
  return path
