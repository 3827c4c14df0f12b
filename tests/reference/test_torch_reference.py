"""The PyTorch peer reference: its ResNet loads into the Keras one, its views and BYOL steps."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip(
    'torch', reason='the peer reference needs the optional extra: make torch-reference '
    '(pip install -e ".[bench]")')

from multisiam_tf import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from multisiam_tf.data import synthetic  # pylint: disable=g-import-not-at-top,wrong-import-position
from multisiam_tf.models import resnet  # pylint: disable=g-import-not-at-top,wrong-import-position
from multisiam_tf.reference import torch_augment  # pylint: disable=g-import-not-at-top,wrong-import-position
from multisiam_tf.reference import torch_byol  # pylint: disable=g-import-not-at-top,wrong-import-position
from multisiam_tf.reference import torch_resnet  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
SCRIPT = os.path.join(ROOT, 'scripts', 'compare_reference.py')
CONFIG = os.path.join(ROOT, 'configs', 'demo.py')


def _randomise_bn(model, generator):
  """Random BN weights and statistics, so a swapped or dropped BN value changes the output."""
  for m in model.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
      c = m.num_features
      with torch.no_grad():
        m.weight.uniform_(0.5, 1.5, generator=generator)
        m.bias.uniform_(-0.2, 0.2, generator=generator)
        m.running_mean.uniform_(-0.2, 0.2, generator=generator)
        m.running_var.uniform_(0.5, 1.5, generator=generator)
      assert m.weight.shape == (c,)


@pytest.mark.parametrize('depth,width,output_stride', [(18, 0.5, 16), (50, 1.0, 32)])
def test_keras_resnet_with_loaded_weights_reproduces_torch(depth, width, output_stride):
  generator = torch.Generator().manual_seed(depth)
  peer = torch_resnet.ResNet(depth, width, output_stride)
  _randomise_bn(peer, generator)
  peer.eval()
  ours = resnet.ResNet(depth, width=width, output_stride=output_stride)
  resnet.load_torchvision_weights(ours, torch_resnet.numpy_state(peer))
  x = torch.randn(2, 3, 45, 38, generator=generator)  # odd sizes: padding must be symmetric
  with torch.no_grad():
    want = {k: v.permute(0, 2, 3, 1).numpy() for k, v in peer(x).items()}
  got = ours(x.permute(0, 2, 3, 1).numpy(), training=False)
  for key in ('c2', 'c3', 'c4', 'c5'):
    assert got[key].shape == want[key].shape, key
    scale = np.abs(want[key]).max()
    np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-4 * scale, err_msg=key)


def test_torch_resnet_has_torchvision_names_and_init():
  peer = torch_resnet.ResNet(50)
  ours = resnet.ResNet(50)
  state = torch_resnet.numpy_state(peer)
  assert list(state) == [name for name, _ in resnet.torchvision_names(ours)]
  kernel = state['layer3.0.conv2.weight']  # 3x3, 256 -> 256, fan_out = 9 * 256
  np.testing.assert_allclose(kernel.std(), np.sqrt(2.0 / (9 * 256)), rtol=0.02)
  assert np.all(state['layer1.0.bn1.weight'] == 1) and np.all(state['layer1.0.bn1.bias'] == 0)


def test_loading_names_a_missing_or_misshapen_weight():
  state = torch_resnet.numpy_state(torch_resnet.ResNet(18, 0.25))
  ours = resnet.ResNet(18, width=0.25)
  del state['layer2.0.downsample.1.running_var']
  with pytest.raises(ValueError, match="no 'layer2.0.downsample.1.running_var'"):
    resnet.load_torchvision_weights(ours, state)
  state = torch_resnet.numpy_state(torch_resnet.ResNet(18, 0.5))
  with pytest.raises(ValueError, match=r'conv1.weight: state dict holds \(7, 7, 3, 32\)'):
    resnet.load_torchvision_weights(ours, state)


def test_hue_rotation_and_views():
  rng = np.random.default_rng(0)
  image = torch.rand(3, 8, 9, generator=torch.Generator().manual_seed(0))
  torch.testing.assert_close(torch_augment.adjust_hue(image, 0.0), image, atol=1e-5, rtol=0)
  red = torch.zeros(3, 2, 2)
  red[0] = 0.8
  green = torch_augment.adjust_hue(red, 1 / 3)
  torch.testing.assert_close(green[:, 0, 0], torch.tensor([0.0, 0.8, 0.0]), atol=1e-5, rtol=0)
  images = [torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8) for _ in range(3)]
  view1, view2 = torch_augment.views(rng, images, 32)
  assert view1.shape == view2.shape == (3, 3, 32, 32) and not torch.equal(view1, view2)
  for _ in range(50):
    top, left, h, w = torch_augment.crop_window(rng, 40, 60)
    assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 60
    assert 0.08 * 2400 * 0.9 <= h * w and 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1


def test_recipe_takes_the_config_scale():
  c = config_lib.load(os.path.join(ROOT, 'configs', 'multisiam_waymo.py')).get_config('small')
  recipe = torch_byol.Recipe.from_config(c)
  assert recipe.architecture == (18, 1.0, 16) and recipe.image_size == 112
  assert (recipe.batch_size, recipe.steps, recipe.warmup_steps) == (32, 300, 30)
  assert (recipe.optimizer, recipe.weight_decay, recipe.eta) == ('adamw', 0.05, 0.02)
  assert torch_byol.Recipe.from_config(c, optimizer='sgd').optimizer == 'sgd'
  assert torch_byol.learning_rate(0, recipe) == 0.0
  assert torch_byol.learning_rate(30, recipe) == pytest.approx(0.008 * 32 / 256)
  assert torch_byol.learning_rate(300, recipe) == pytest.approx(0.0)
  assert torch_byol.target_momentum(0, recipe) == pytest.approx(0.99)
  assert torch_byol.target_momentum(300, recipe) == pytest.approx(1.0)


def test_lars_step_matches_its_formula():
  w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ||w|| = 5
  b = torch.nn.Parameter(torch.tensor([1.0, -1.0]))  # 1-D: plain SGD, no decay
  optimizer = torch_byol.LARS([w, b], lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.02)
  w.grad = torch.tensor([[0.0, 2.0]])  # ||g|| = 2
  b.grad = torch.tensor([0.5, 0.5])
  optimizer.step()
  trust = min(0.02 * 5 / (2 + 0.1 * 5 + 1e-8) / 0.5, 1.0)
  torch.testing.assert_close(w.detach(), torch.tensor([[3.0, 4.0]])
                             - 0.5 * trust * (torch.tensor([[0.0, 2.0]]) + 0.1 * torch.tensor(
                                 [[3.0, 4.0]])))
  torch.testing.assert_close(b.detach(), torch.tensor([0.75, -1.25]))


def test_adamw_step_decays_weights_only_and_matches_its_formula():
  rng = np.random.default_rng()
  w0, b0, gw, gb = (rng.normal(size=s).astype(np.float32) for s in ((3, 4), (4,), (3, 4), (4,)))
  w, b = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
  recipe = torch_byol.Recipe(optimizer='adamw', base_lr=0.8, batch_size=32, weight_decay=0.05)
  optimizer = torch_byol.make_optimizer(recipe, [w, b])
  w.grad, b.grad = torch.tensor(gw), torch.tensor(gb)
  optimizer.step()
  lr = 0.8 * 32 / 256
  # First Adam step: m / (sqrt(v) + eps) with bias correction is g / (|g| + eps).
  np.testing.assert_allclose(w.detach().numpy(),
                             w0 * (1 - lr * 0.05) - lr * gw / (np.abs(gw) + 1e-7), rtol=1e-5)
  np.testing.assert_allclose(b.detach().numpy(), b0 - lr * gb / (np.abs(gb) + 1e-7), rtol=1e-5)


def test_byol_steps_decrease_the_loss(tmp_path):
  synthetic.write_dataset(str(tmp_path), 8, 48, 64)
  images = torch_byol.load_images(os.path.join(tmp_path, 'images'))
  recipe = torch_byol.Recipe(depth=18, width=0.25, output_stride=32, image_size=32,
                             hidden_dim=64, output_dim=32, batch_size=8, steps=12,
                             warmup_steps=2, seed=0)
  model, losses = torch_byol.pretrain(recipe, images)
  assert len(losses) == 12 and np.isfinite(losses).all()
  assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
  path = str(tmp_path / 'peer.pt')
  torch_byol.save(model, recipe, losses, path)
  state, loaded_recipe, loaded_losses = torch_byol.load_backbone_state(path)
  assert loaded_recipe == dataclasses.replace(recipe) and loaded_losses == losses
  np.testing.assert_array_equal(state['layer4.1.bn2.running_mean'],
                                model.backbone.layer4[1].bn2.running_mean.numpy())


def test_compare_script_end_to_end(tmp_path):
  data = str(tmp_path / 'scenes')
  synthetic.write_dataset(data, 8, 48, 64)
  out = tmp_path / 'compare'
  completed = subprocess.run(
      [sys.executable, SCRIPT, '--config', CONFIG, f'--config.data.path={data}/images',
       '--config.data.num_examples=8', '--config.data.image_size=32',
       '--config.model.method=byol', '--config.model.backbone.width=0.25',
       '--config.model.head.hidden_dim=32', '--config.model.head.output_dim=16',
       '--config.train.batch_size=4', '--config.train.steps=3', '--config.optim.warmup_steps=1',
       '--train', data, '--val', data, '--limit', '6', '--num_classes', '9', '--size', '48,64',
       '--crop', '32,32', '--finetune_steps', '2', '--probe_epochs', '1', '--out', str(out)],
      capture_output=True, text=True, timeout=600, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  result = json.loads((out / 'compare.json').read_text())
  assert result['recipe']['width'] == 0.25 and result['recipe']['steps'] == 3
  assert set(result['results']) == {'peer BYOL', 'random init'}
  for scores in result['results'].values():
    assert scores['finetune']['steps'] == 2 and scores['probe']['epochs'] == 1
  assert (out / 'peer.pt').exists() and (out / 'keras' / 'backbone.weights.h5').exists()
  assert 'peer BYOL' in completed.stdout and 'finetune' in completed.stdout
