"""ResNet v1.5 in plain PyTorch, torchvision's module names and init, models/resnet.py's shapes.

torchvision's layout (conv1, bn1, layer1.0.conv1, ..., layerS.B.downsample.0 / .1; no fc), so
`state_dict()` maps 1:1 onto `resnet.torchvision_names` of the Keras ResNet. Width and output
stride follow models/resnet.py exactly: every stage's channels are int(base * width) (at least
1), and output stride 16 runs layer4 at stride 1 with dilation 2 in all of its 3x3 convolutions
(torchvision's `replace_stride_with_dilation` would leave the first block's at dilation 1).
Init is torchvision's: kaiming_normal_(fan_out, relu) kernels, BN weight 1 and bias 0.
"""

from torch import nn

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.1  # torchvision's; models/resnet.py's 0.9 in Keras' convention

_LAYOUT = {18: ('basic', (2, 2, 2, 2)), 34: ('basic', (3, 4, 6, 3)),
           50: ('bottleneck', (3, 4, 6, 3)), 101: ('bottleneck', (3, 4, 23, 3))}


def _channels(base, width):
  return max(1, int(base * width))


def _conv3x3(cin, cout, stride, dilation):
  return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)


def _bn(channels):
  return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride, dilation):
    super().__init__()
    self.conv1 = _conv3x3(cin, planes, stride, dilation)
    self.bn1 = _bn(planes)
    self.conv2 = _conv3x3(planes, planes, 1, dilation)
    self.bn2 = _bn(planes)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = _projection(cin, planes, stride)

  def forward(self, x):
    y = self.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride, dilation):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = _bn(planes)
    self.conv2 = _conv3x3(planes, planes, stride, dilation)  # v1.5: the stride on the 3x3
    self.bn2 = _bn(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = _bn(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = _projection(cin, planes * 4, stride)

  def forward(self, x):
    y = self.relu(self.bn1(self.conv1(x)))
    y = self.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def _projection(cin, cout, stride):
  """1x1 conv + BN shortcut where the shape changes (torchvision's downsample), else None."""
  if stride == 1 and cin == cout:
    return None
  return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout))


class ResNet(nn.Module):
  """Images [B, 3, H, W] -> {'c2', 'c3', 'c4', 'c5'}: the outputs of layer1..layer4."""

  def __init__(self, depth, width=1.0, output_stride=32):
    super().__init__()
    if depth not in _LAYOUT:
      raise ValueError(f'ResNet depth must be one of {sorted(_LAYOUT)}, got {depth}')
    if output_stride not in (16, 32):
      raise ValueError(f'output_stride must be 16 or 32, got {output_stride}')
    kind, blocks = _LAYOUT[depth]
    block = BasicBlock if kind == 'basic' else Bottleneck
    cin = _channels(64, width)
    self.conv1 = nn.Conv2d(3, cin, 7, 2, padding=3, bias=False)
    self.bn1 = _bn(cin)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, padding=1)
    for stage, num_blocks in enumerate(blocks, start=1):
      dilated = stage == 4 and output_stride == 16
      stride = 1 if stage == 1 or dilated else 2
      planes = _channels(64 * 2 ** (stage - 1), width)
      layers = []
      for b in range(num_blocks):
        layers.append(block(cin, planes, stride if b == 0 else 1, 2 if dilated else 1))
        cin = planes * block.expansion
      setattr(self, f'layer{stage}', nn.Sequential(*layers))
    self.out_channels = cin
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
      elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    endpoints = {}
    for stage in range(1, 5):
      x = getattr(self, f'layer{stage}')(x)
      endpoints[f'c{stage + 1}'] = x
    return endpoints


def numpy_state(module):
  """{name: float32 numpy array} of a module's state dict, without `num_batches_tracked`
  (torchvision's BN step counter, which Keras does not keep)."""
  return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()
          if not k.endswith('num_batches_tracked')}

