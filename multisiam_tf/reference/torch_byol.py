"""A minimal BYOL (Grill et al. 2020) in plain PyTorch: the peer reference at this project's scale.

solo-learn's BYOL recipe (`solo/methods/byol.py`, `solo/utils/lars.py`), written here:
  online  f (torch_resnet.ResNet) -> global average pool -> projector g -> predictor q
  target  EMA of f and g (parameters; BN statistics are the target's own, batch-statistics BN)
  loss    sum over the two directions of mean(2 - 2 cos(q(f(v_a)), g'(f'(v_b))))
  LARS    eta 0.02, the adapted lr clipped at the scheduled one, biases and BN parameters out of
          weight decay and adaptation (or plain SGD with momentum, or AdamW with them undecayed)
  lr      base_lr * batch / 256, linear warmup from 0, then cosine to 0, per step
  tau     1 - (1 - tau_base) (cos(pi k / K) + 1) / 2 after the k-th update
The shapes, views, batch, steps, warmup and seed come from this project's config (`Recipe.
from_config`), so one config describes both runs. A seed fixes torch's init and the numpy
stream of batches and augmentations.
"""

import copy
import dataclasses
import math
import time

from absl import logging
import numpy as np
from PIL import Image
import torch
from torch import nn
from torch.nn import functional as F

from multisiam_tf.eval import labelled
from multisiam_tf.reference import torch_augment
from multisiam_tf.reference import torch_resnet

OPTIMIZERS = ('lars', 'sgd', 'adamw')


@dataclasses.dataclass
class Recipe:
  depth: int = 18
  width: float = 0.5
  output_stride: int = 16
  image_size: int = 96
  area_range: tuple = (0.08, 1.0)
  aspect_ratio_range: tuple = (3 / 4, 4 / 3)
  hidden_dim: int = 4096
  output_dim: int = 256
  batch_size: int = 32
  steps: int = 300
  warmup_steps: int = 30
  base_lr: float = 1.0
  weight_decay: float = 1e-5
  momentum: float = 0.9
  tau_base: float = 0.99
  optimizer: str = 'lars'
  eta: float = 0.02  # solo-learn's trust coefficient
  clip_lr: bool = True
  seed: int = 0

  @classmethod
  def from_config(cls, config, **overrides):
    """The recipe at a config's scale: its backbone, views, heads, batch, schedule, optimiser
    (its LARS is solo-learn's) and seed; `overrides` replace any of them."""
    if config.train.accumulate_steps != 1:
      raise ValueError(f'train.accumulate_steps is {config.train.accumulate_steps}; the peer '
                       'reference updates once per batch (1)')
    b, o = config.model.backbone, config.optim
    recipe = cls(depth=b.depth, width=b.width, output_stride=b.output_stride,
                 image_size=config.data.image_size, area_range=tuple(config.data.area_range),
                 aspect_ratio_range=tuple(config.data.aspect_ratio_range),
                 hidden_dim=config.model.head.hidden_dim,
                 output_dim=config.model.head.output_dim, batch_size=config.train.batch_size,
                 steps=config.train.steps, warmup_steps=o.warmup_steps, base_lr=o.base_lr,
                 weight_decay=o.weight_decay, momentum=o.momentum, tau_base=o.tau_base,
                 optimizer=o.name, seed=config.seed)
    return dataclasses.replace(recipe, **overrides)

  @property
  def architecture(self):
    return (self.depth, self.width, self.output_stride)


def mlp(in_dim, hidden_dim, output_dim):
  """BYOL's projector / predictor: Linear -> BN -> ReLU -> Linear."""
  return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim),
                       nn.ReLU(inplace=True), nn.Linear(hidden_dim, output_dim))


def byol_loss(p, z):
  """mean(2 - 2 cos(p, z)) over the batch, z a target (no gradient)."""
  return 2.0 - 2.0 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


class BYOL(nn.Module):
  """Online backbone, projector and predictor; target backbone and projector (EMA copies)."""

  def __init__(self, recipe):
    super().__init__()
    self.backbone = torch_resnet.ResNet(*recipe.architecture)
    self.projector = mlp(self.backbone.out_channels, recipe.hidden_dim, recipe.output_dim)
    self.predictor = mlp(recipe.output_dim, recipe.hidden_dim, recipe.output_dim)
    self.target_backbone = copy.deepcopy(self.backbone)
    self.target_projector = copy.deepcopy(self.projector)
    for p in self.target_parameters():
      p.requires_grad_(False)

  def online_parameters(self):
    return [p for m in (self.backbone, self.projector, self.predictor) for p in m.parameters()]

  def target_parameters(self):
    return [p for m in (self.target_backbone, self.target_projector) for p in m.parameters()]

  def loss(self, view1, view2):
    """BYOL's symmetrised loss of two batches of views [B, 3, S, S]."""
    pool = lambda backbone, x: backbone(x)['c5'].mean((2, 3))
    online = [self.predictor(self.projector(pool(self.backbone, v))) for v in (view1, view2)]
    with torch.no_grad():
      target = [self.target_projector(pool(self.target_backbone, v)) for v in (view1, view2)]
    return byol_loss(online[0], target[1]) + byol_loss(online[1], target[0])

  @torch.no_grad()
  def update_target(self, tau):
    """xi <- tau xi + (1 - tau) theta over the parameters of f and g."""
    online = [p for m in (self.backbone, self.projector) for p in m.parameters()]
    for t, o in zip(self.target_parameters(), online):
      t.mul_(tau).add_(o, alpha=1.0 - tau)


class LARS(torch.optim.Optimizer):
  """solo-learn's LARS: per tensor w with gradient g (unless it is 1-D and excluded),
  trust = eta ||w|| / (||g|| + wd ||w||), with clip_lr divided by lr and clipped at 1 (the
  adapted lr never exceeds the scheduled one), and g <- (g + wd w) trust; then SGD with
  momentum: v <- m v + g, w <- w - lr v."""

  def __init__(self, params, lr, momentum=0.9, weight_decay=0.0, eta=0.02, clip_lr=True,
               exclude_bias_n_norm=True, eps=1e-8):
    super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                                  clip_lr=clip_lr, exclude_bias_n_norm=exclude_bias_n_norm,
                                  eps=eps))

  @torch.no_grad()
  def step(self, closure=None):
    del closure
    for group in self.param_groups:
      lr, wd = group['lr'], group['weight_decay']
      for p in group['params']:
        if p.grad is None:
          continue
        d_p = p.grad
        w_norm, g_norm = torch.norm(p), torch.norm(p.grad)
        if (p.ndim != 1 or not group['exclude_bias_n_norm']) and w_norm > 0 and g_norm > 0:
          trust = group['eta'] * w_norm / (g_norm + wd * w_norm + group['eps'])
          if group['clip_lr'] and lr > 0:
            trust = torch.clamp(trust / lr, max=1.0)
          d_p = (d_p + wd * p) * trust
        state = self.state[p]
        if 'momentum_buffer' not in state:
          state['momentum_buffer'] = d_p.clone()
        else:
          state['momentum_buffer'].mul_(group['momentum']).add_(d_p)
        p.add_(state['momentum_buffer'], alpha=-lr)


def make_optimizer(recipe, params):
  peak = recipe.base_lr * recipe.batch_size / 256
  if recipe.optimizer == 'lars':
    return LARS(params, peak, recipe.momentum, recipe.weight_decay, recipe.eta, recipe.clip_lr)
  if recipe.optimizer == 'sgd':
    return torch.optim.SGD(params, peak, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay)
  if recipe.optimizer == 'adamw':  # Keras' epsilon, and BN and biases undecayed, as ours
    params = list(params)
    groups = [{'params': [p for p in params if p.ndim > 1], 'weight_decay': recipe.weight_decay},
              {'params': [p for p in params if p.ndim <= 1], 'weight_decay': 0.0}]
    return torch.optim.AdamW(groups, peak, eps=1e-7)
  raise ValueError(f'optimizer must be one of {OPTIMIZERS}, got {recipe.optimizer!r}')


def learning_rate(step, recipe):
  """Linear warmup from 0 to base_lr * batch / 256, then cosine to 0 at recipe.steps."""
  peak = recipe.base_lr * recipe.batch_size / 256
  if step < recipe.warmup_steps:
    return peak * step / recipe.warmup_steps
  decay_steps = recipe.steps - recipe.warmup_steps
  fraction = min(step - recipe.warmup_steps, decay_steps) / decay_steps if decay_steps else 1.0
  return peak * 0.5 * (1.0 + math.cos(math.pi * fraction))


def target_momentum(step, recipe):
  return 1.0 - (1.0 - recipe.tau_base) * (math.cos(math.pi * min(step / recipe.steps, 1)) + 1) / 2


def load_images(folder):
  """Every PNG / JPEG of folder as uint8 tensors [3, H, W], decoded once, in name order."""
  paths = labelled.image_paths(folder)
  if not paths:
    raise FileNotFoundError(f'no PNG or JPEG image in {folder}')
  return [torch.from_numpy(np.array(Image.open(p).convert('RGB'))).permute(2, 0, 1).contiguous()
          for p in paths]


def batch_order(num, batch_size, steps, rng):
  """[steps, batch_size] indices: one shuffled pass after another, cut into full batches."""
  passes = -(-steps * batch_size // num)
  return np.concatenate([rng.permutation(num) for _ in range(passes)])[:steps * batch_size] \
      .reshape(steps, batch_size)


def pretrain(recipe, images, log_every=10):
  """Trains BYOL on uint8 images [3, H, W] for recipe.steps; returns (model, loss per step)."""
  torch.manual_seed(recipe.seed)
  rng = np.random.default_rng(recipe.seed)
  model = BYOL(recipe).train()
  optimizer = make_optimizer(recipe, model.online_parameters())
  losses, start = [], time.time()
  for step, batch in enumerate(batch_order(len(images), recipe.batch_size, recipe.steps, rng)):
    view1, view2 = torch_augment.views(rng, [images[i] for i in batch], recipe.image_size,
                                       recipe.area_range, recipe.aspect_ratio_range)
    for group in optimizer.param_groups:
      group['lr'] = learning_rate(step, recipe)
    loss = model.loss(view1, view2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.update_target(target_momentum(step + 1, recipe))
    losses.append(loss.item())
    if (step + 1) % log_every == 0 or step + 1 == recipe.steps:
      logging.info('peer BYOL step %d/%d: loss %.4f (%.2f s/step)', step + 1, recipe.steps,
                   np.mean(losses[-log_every:]), (time.time() - start) / (step + 1))
  return model, losses


def save(model, recipe, losses, path):
  """The online backbone's state dict, the recipe and the losses, for `load_backbone_state`."""
  torch.save({'backbone': model.backbone.state_dict(), 'recipe': dataclasses.asdict(recipe),
              'losses': losses}, path)


def load_backbone_state(path):
  """(numpy torchvision state dict of the online backbone, Recipe, losses) of a saved run."""
  saved = torch.load(path, weights_only=True)
  recipe = Recipe(**saved['recipe'])
  backbone = torch_resnet.ResNet(*recipe.architecture)
  backbone.load_state_dict(saved['backbone'])
  return torch_resnet.numpy_state(backbone), recipe, saved['losses']
