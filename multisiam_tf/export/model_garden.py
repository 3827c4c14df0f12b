"""The backbone as a checkpoint that TF Model Garden's ResNet restores.

Model Garden (tf-models-official, Keras 2 via tf_keras) fine-tunes detection and segmentation
from `init_checkpoint` with `init_checkpoint_modules: backbone`, which reads
`tf.train.Checkpoint(backbone=model.backbone)` and asserts that every backbone object matched.
So the exporter builds Model Garden's own `official.vision.modeling.backbones.ResNet` (v0 stem,
model_id = depth, depth_multiplier = width, norm_epsilon = 1e-5 as ours), copies our weights
into it and saves `tf.train.Checkpoint(backbone=that_resnet)`: the object graph is Model
Garden's by construction. `DilatedResNet` (model_id 50/101, stem_type v0) has the same object
graph and restores it too, for DeepLab.

Mapping, by name through torchvision's naming (`resnet.torchvision_names`):
  Model Garden                                ours (torchvision)
  stem Conv2D, BatchNormalization             conv1, bn1
  block_group_l{S+1}, block B: _conv1.._conv3 layerS.B.conv1..conv3
                               _norm1.._norm3 layerS.B.bn1..bn3
                               _shortcut      layerS.B.downsample.0
                               _norm0         layerS.B.downsample.1
Model Garden gives every stage's first block a projection shortcut; where torchvision's has
none (ResNet-18/34 layer1.0) the projection is written as the identity (1x1 kernel = I,
BN = 1 x + 0 with variance 1 - eps), so the function is unchanged.

Numerics: Model Garden pads every convolution 'same', torchvision (and ours) pad k // 2 on
both sides. They agree when every strided layer sees an odd size (inputs of 32 k + 1 pixels);
on even sizes Model Garden samples the stride-2 grid one pixel further, which fine-tuning
absorbs. Input normalisation is the same (ImageNet mean/std of RGB in [0, 1]).

Model Garden is an optional extra (`make model-garden`); this module imports it on use.
"""

import numpy as np
import tensorflow as tf

from multisiam_tf.models import resnet

_BLOCK_PARTS = {'_conv1': 'conv1', '_norm1': 'bn1', '_conv2': 'conv2', '_norm2': 'bn2',
                '_conv3': 'conv3', '_norm3': 'bn3', '_shortcut': 'downsample.0',
                '_norm0': 'downsample.1'}


def build_model_garden_resnet(depth, width=1.0):
  """Model Garden's ResNet with our BatchNorm epsilon; variables created, values random."""
  try:
    import tf_keras  # pylint: disable=g-import-not-at-top
    from official.vision.modeling import backbones  # pylint: disable=g-import-not-at-top
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(f'the model_garden export needs TF Model Garden, an optional extra: '
                              f'run `make model-garden` ({e})') from e
  return backbones.ResNet(
      model_id=depth, depth_multiplier=width, norm_epsilon=resnet.BN_EPSILON,
      input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]))


def model_garden_layers(mg_resnet):
  """{torchvision module name: Model Garden layer} for every layer with variables."""
  from official.vision.modeling.backbones import resnet as mg  # pylint: disable=g-import-not-at-top
  from official.vision.modeling.layers import nn_blocks  # pylint: disable=g-import-not-at-top
  block_types = (nn_blocks.ResidualBlock, nn_blocks.BottleneckBlock)
  stem = [layer for layer in mg_resnet.layers[:4] if layer.weights]  # Conv2D, BN
  blocks = [layer for layer in mg_resnet.layers if isinstance(layer, block_types)]
  per_stage = [repeats for _, _, repeats in mg.RESNET_SPECS[mg_resnet.get_config()['model_id']]]
  layers = {'conv1': stem[0], 'bn1': stem[1]}
  starts = np.cumsum([0] + per_stage)
  for stage, (start, count) in enumerate(zip(starts, per_stage), start=1):
    for index, block in enumerate(blocks[start:start + count]):
      for attribute, part in _BLOCK_PARTS.items():
        if hasattr(block, attribute):
          layers[f'layer{stage}.{index}.{part}'] = getattr(block, attribute)
  return layers


def copy_weights(backbone, mg_resnet):
  """Assigns `backbone`'s values to every variable of Model Garden's ResNet; returns it."""
  ours = {}
  for name, variable in resnet.torchvision_names(backbone):
    ours.setdefault(name.rsplit('.', 1)[0], {})[variable.name] = np.asarray(variable)
  theirs = model_garden_layers(mg_resnet)
  if set(ours) - set(theirs):
    raise ValueError(f'no Model Garden layer for {sorted(set(ours) - set(theirs))}; '
                     'is depth/width that of the backbone?')
  for module, layer in theirs.items():
    values = ours.get(module) or _identity(layer)
    if len(values) != len(layer.weights):
      raise ValueError(f'{module}: {sorted(values)} for {len(layer.weights)} variables')
    for attribute, value in values.items():  # Keras and tf_keras name these alike
      getattr(layer, attribute).assign(value)  # assign checks the shape
  return mg_resnet


def _identity(layer):
  """Values making a projection shortcut the identity (torchvision has none there)."""
  if len(layer.weights) == 1:  # 1x1 Conv2D, stride 1, as many outputs as inputs
    return {'kernel': np.eye(layer.kernel.shape[-1], dtype=np.float32)[None, None]}
  channels = layer.gamma.shape[0]
  return {'gamma': np.ones(channels, np.float32), 'beta': np.zeros(channels, np.float32),
          'moving_mean': np.zeros(channels, np.float32),
          'moving_variance': np.full(channels, 1.0 - layer.epsilon, np.float32)}


def export_model_garden(backbone, depth, width, out_dir, step=0):
  """Writes `tf.train.Checkpoint(backbone=<Model Garden ResNet>)` as `out_dir/ckpt-<step>`.

  Returns the checkpoint prefix; Model Garden's `init_checkpoint` takes it or `out_dir` (the
  `checkpoint` state file written beside it points at the newest).
  """
  mg_resnet = copy_weights(backbone, build_model_garden_resnet(depth, width))
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(backbone=mg_resnet), out_dir,
                                       max_to_keep=None)
  return manager.save(checkpoint_number=step)
