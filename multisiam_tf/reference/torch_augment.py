"""BYOL's two views in plain PyTorch, computed as torchvision's transforms compute them.

The recipe of lightly's and solo-learn's BYOL (Grill et al. 2020, App. B), written here:
RandomResizedCrop (area 0.08-1, aspect 3/4-4/3, bilinear, antialiased), horizontal flip p 0.5,
ColorJitter(0.4, 0.4, 0.2, 0.1) in random order p 0.8, grayscale p 0.2, gaussian blur with
sigma ~ U(0.1, 2) and a kernel of 10% of the side p 1.0 / 0.1, solarize p 0.0 / 0.2, ImageNet
normalisation. torchvision's jitter is multiplicative in brightness (data/augment.py follows
BYOL's additive one). Images are float [3, H, W] in [0, 1]; every random choice comes from a
numpy Generator, so one seed fixes the stream.
"""

import math

import torch
from torch.nn import functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
FLIP_PROB, JITTER_PROB, GRAYSCALE_PROB = 0.5, 0.8, 0.2
BLUR_PROB = (1.0, 0.1)  # view 1, view 2
SOLARIZE_PROB = (0.0, 0.2)
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.4, 0.4, 0.2, 0.1
SIGMA_RANGE = (0.1, 2.0)
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


def crop_window(rng, height, width, area_range=(0.08, 1.0), ratio_range=(3 / 4, 4 / 3)):
  """torchvision's RandomResizedCrop.get_params: (top, left, h, w) after up to 10 draws, else
  the centre crop of the aspect ratio clamped to the range."""
  log_lo, log_hi = math.log(ratio_range[0]), math.log(ratio_range[1])
  for _ in range(10):
    area = height * width * rng.uniform(*area_range)
    aspect = math.exp(rng.uniform(log_lo, log_hi))
    w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
    if 0 < w <= width and 0 < h <= height:
      return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
  h, w = height, width
  if width / height < ratio_range[0]:
    h = round(width / ratio_range[0])
  elif width / height > ratio_range[1]:
    w = round(height * ratio_range[1])
  return (height - h) // 2, (width - w) // 2, h, w


def grayscale(image):
  """Luma [1, H, W] of an RGB image."""
  return sum(w * c for w, c in zip(GRAY_WEIGHTS, image))[None]


def _blend(image, other, factor):
  return (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)


def adjust_brightness(image, factor):
  return _blend(image, torch.zeros_like(image), factor)


def adjust_contrast(image, factor):
  return _blend(image, grayscale(image).mean(), factor)


def adjust_saturation(image, factor):
  return _blend(image, grayscale(image), factor)


def adjust_hue(image, shift):
  """Rotates the HSV hue by `shift` turns (torchvision's adjust_hue)."""
  value, _ = image.max(0)
  chroma = value - image.min(0)[0]
  r, g, b = image
  safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
  hue = torch.where(value == r, (g - b) / safe,
                    torch.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
  hue = (hue / 6.0 + shift) % 1.0
  saturation = chroma / torch.where(value > 0, value, torch.ones_like(value))
  # HSV -> RGB: channel n in (5, 3, 1) is V - V S clip(min(k, 4 - k), 0, 1), k = (n + 6 H) mod 6
  ks = [(n + 6.0 * hue) % 6.0 for n in (5.0, 3.0, 1.0)]
  return torch.stack([value - value * saturation * torch.clamp(torch.minimum(k, 4.0 - k), 0, 1)
                      for k in ks])


def color_jitter(rng, image):
  """torchvision's ColorJitter(0.4, 0.4, 0.2, 0.1): factors drawn, then ops in random order."""
  ops = [lambda x, f=rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS): adjust_brightness(x, f),
         lambda x, f=rng.uniform(1 - CONTRAST, 1 + CONTRAST): adjust_contrast(x, f),
         lambda x, f=rng.uniform(1 - SATURATION, 1 + SATURATION): adjust_saturation(x, f),
         lambda x, f=rng.uniform(-HUE, HUE): adjust_hue(x, f)]
  for i in rng.permutation(4):
    image = ops[i](image)
  return image


def gaussian_blur(image, sigma, radius):
  """Separable gaussian of 2 radius + 1 taps with reflect padding (torchvision's GaussianBlur)."""
  x = torch.arange(-radius, radius + 1, dtype=image.dtype)
  kernel = torch.exp(-0.5 * (x / sigma) ** 2)
  kernel = kernel / kernel.sum()
  channels = image.shape[0]
  out = F.pad(image[None], (radius,) * 4, mode='reflect')
  out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
  out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
  return out[0]


def solarize(image, threshold=0.5):
  return torch.where(image >= threshold, 1.0 - image, image)


def view(rng, image, index, size, area_range=(0.08, 1.0), ratio_range=(3 / 4, 4 / 3)):
  """View `index` (0 or 1) of a uint8 image [3, H, W]: normalised float32 [3, size, size]."""
  top, left, h, w = crop_window(rng, image.shape[1], image.shape[2], area_range, ratio_range)
  x = image[None, :, top:top + h, left:left + w].float() / 255.0
  x = F.interpolate(x, (size, size), mode='bilinear', align_corners=False, antialias=True)
  x = x[0].clamp(0.0, 1.0)
  if rng.random() < FLIP_PROB:
    x = x.flip(-1)
  if rng.random() < JITTER_PROB:
    x = color_jitter(rng, x)
  if rng.random() < GRAYSCALE_PROB:
    x = grayscale(x).expand(3, -1, -1)
  if rng.random() < BLUR_PROB[index]:
    x = gaussian_blur(x, rng.uniform(*SIGMA_RANGE), size // 20)  # 10% of the side, odd
  if rng.random() < SOLARIZE_PROB[index]:
    x = solarize(x)
  return (x - MEAN) / STD


def views(rng, images, size, area_range=(0.08, 1.0), ratio_range=(3 / 4, 4 / 3)):
  """Both views of each uint8 image [3, H, W] in `images`: two float32 [B, 3, size, size]."""
  return tuple(torch.stack([view(rng, image, index, size, area_range, ratio_range)
                            for image in images]) for index in (0, 1))
