"""The bare step in plain PyTorch on the CPU, one worker process (worker.py): the online ResNet
(reference/torch_resnet.py, channels_last) forward and backward on both views, the target
forward on both under no_grad, BN in training mode; bfloat16 rows under CPU autocast."""

import contextlib
import os
import time

import torch

from multisiam_tf.bench import worker
from multisiam_tf.reference import torch_resnet


def _autocast(precision):
  if precision == 'bfloat16':
    return torch.autocast('cpu', dtype=torch.bfloat16)
  return contextlib.nullcontext()


def bare_update(settings):
  online, target = (torch_resnet.ResNet(settings['depth']).to(memory_format=torch.channels_last)
                    for _ in range(2))
  views = [torch.randn(settings['batch'], 3, settings['image_size'], settings['image_size'])
           .to(memory_format=torch.channels_last) for _ in range(2)]

  def step():
    online.zero_grad(set_to_none=True)
    with _autocast(settings['precision']):
      loss = sum(online(v)['c5'].float().mean() for v in views)
    loss.backward()
    with torch.no_grad(), _autocast(settings['precision']):
      for v in views:
        target(v)
  return step


def matmul_rate(precision):
  """A function n -> FLOP/s of an n x n matmul in `precision` (best of 5)."""
  dtype = torch.bfloat16 if precision == 'bfloat16' else torch.float32

  def rate(n):
    a = torch.randn(n, n).to(dtype)
    b = a.t().contiguous()
    torch.mm(a, b)
    seconds = []
    for _ in range(5):
      start = time.perf_counter()
      torch.mm(a, b)
      seconds.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(seconds)
  return rate


def build(settings):
  # torch defaults to the physical cores; TensorFlow uses every core this process may run on.
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  return bare_update(settings), matmul_rate(settings['precision']), 'CPU'


if __name__ == '__main__':
  worker.main(build)
