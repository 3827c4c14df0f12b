"""BYOL's asymmetric photometric augmentations (BYOL App. B; METHOD.md section 1).

`sample_augmentation` draws every random choice of one view from a stateless seed;
`apply_augmentation` applies them with the deterministic ops below; `byol_augment` does both.
Images are float32 [S, S, 3] in [0, 1] until `normalize`.
"""

import numpy as np
import tensorflow as tf

MEAN = (0.485, 0.456, 0.406)  # ImageNet, RGB
STD = (0.229, 0.224, 0.225)

FLIP_PROB = 0.5
COLOR_JITTER_PROB = 0.8
GRAYSCALE_PROB = 0.2
BLUR_PROB = {1: 1.0, 2: 0.1}
SOLARIZE_PROB = {1: 0.0, 2: 0.2}
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.4, 0.4, 0.2, 0.1
SIGMA_RANGE = (0.1, 2.0)
SOLARIZE_THRESHOLD = 0.5


def flip(image):
  """Horizontal flip of [..., H, W, C]."""
  return tf.reverse(image, [-2])


def adjust_brightness(image, delta):
  """BYOL's brightness: an additive offset on every pixel."""
  return image + delta


def adjust_contrast(image, factor):
  """Scales each channel's deviation from its own spatial mean."""
  return tf.image.adjust_contrast(image, factor)


def adjust_saturation(image, factor):
  """Scales HSV saturation by `factor`."""
  return tf.image.adjust_saturation(image, factor)


def adjust_hue(image, delta):
  """Rotates hue by `delta` turns."""
  return tf.image.adjust_hue(image, delta)


def color_jitter(image, brightness_delta, contrast_factor, saturation_factor, hue_delta, order):
  """Brightness, contrast, saturation, hue (ops 0..3) in the given `order` ([4] int permutation).

  Clips after brightness and contrast, as SimCLR's TF code clips after each op: the HSV ops
  assume [0, 1] and keep an image in [0, 1] (they only move values between a pixel's channel
  minimum and maximum), so clipping after them changes nothing beyond float rounding.
  """
  ops = [lambda x: tf.clip_by_value(adjust_brightness(x, brightness_delta), 0.0, 1.0),
         lambda x: tf.clip_by_value(adjust_contrast(x, contrast_factor), 0.0, 1.0),
         lambda x: adjust_saturation(x, saturation_factor),
         lambda x: adjust_hue(x, hue_delta)]
  for slot in range(4):
    image = tf.switch_case(order[slot], [lambda op=op: op(image) for op in ops])
  return image


GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale's ITU-R 601 luma


def to_grayscale(image):
  """ITU-R 601 luma (tf.image.rgb_to_grayscale), repeated over 3 channels.

  One [N, 3] x [3, 3] product: it reads and writes the image once, where a per-channel reduce
  and a tile each take a slow path for a 3-wide last axis.
  """
  image = tf.convert_to_tensor(image, tf.float32)
  weights = tf.tile(tf.constant(GRAY_WEIGHTS)[:, None], [1, 3])
  return tf.reshape(tf.reshape(image, [-1, 3]) @ weights, tf.shape(image))


def gaussian_kernel(sigma, radius):
  """Normalised 1-D gaussian of 2 * radius + 1 taps."""
  x = tf.range(-radius, radius + 1, dtype=tf.float32)
  k = tf.exp(-tf.square(x) / (2.0 * tf.square(tf.cast(sigma, tf.float32))))
  return k / tf.reduce_sum(k)


def blur_radius(image_size):
  """BYOL's kernel of 10% of the side, made odd: 23 taps at 224."""
  return image_size // 10 // 2


BLUR_BLOCK = 32  # output rows per block of the banded blur


def _blur_frames(size, radius, block):
  """Row indices `[block + 2 radius, blocks]` (numpy) of the reflect-padded input rows that each
  block of `block` output rows reads; rows past the image (when block does not divide size)
  repeat the last."""
  blocks = -(-size // block)
  rows = np.abs(np.arange(block + 2 * radius)[:, None] + np.arange(blocks)[None] * block - radius)
  rows = np.where(rows > size - 1, 2 * (size - 1) - rows, rows)  # reflect, edge unrepeated
  return np.clip(rows, 0, size - 1).astype(np.int32), blocks


def _blur_rows(matrix, band, radius, block):
  """The 1-D blur down the rows of a [S, N] matrix (each column blurred): blocks of `block`
  output rows, each the band matrix [block, block + 2 radius] times the rows it reads, all in
  one matrix product."""
  size = matrix.shape[0]
  rows, blocks = _blur_frames(size, radius, block)
  frames = tf.gather(matrix, rows)  # [block + 2r, blocks, N]
  out = band @ tf.reshape(frames, [block + 2 * radius, -1])  # [block, blocks * N]
  out = tf.transpose(tf.reshape(out, [block, blocks, -1]), [1, 0, 2])  # contiguous row blocks
  return tf.reshape(out, [blocks * block, -1])[:size]


def gaussian_blur(image, sigma):
  """Separable gaussian blur of [S, S, C] with reflect padding (torchvision's GaussianBlur).

  Each 1-D pass is one matrix product of a banded block: 32 output rows read the 32 + 2r rows
  around them, so a pass costs S (32 + 2r) S C multiply-adds instead of the full S x S matrix's
  S^3 C (4x less at 224). The passes run down the rows of [H, W C] and of its 2-D transpose
  [W C, H] seen as [W, C H]; transposing back gives [H, W C] again. 2-D transposes cost a third
  of a [1, 0, 2] transpose of [H, W, C].
  """
  image = tf.convert_to_tensor(image, tf.float32)
  size, _, channels = image.shape.as_list()
  radius = blur_radius(size)
  block = min(BLUR_BLOCK, size)
  # band[i, i + t] = kernel[t]: a gather of the kernel followed by a zero
  offsets = np.arange(block + 2 * radius)[None] - np.arange(block)[:, None]
  offsets = np.where((offsets >= 0) & (offsets <= 2 * radius), offsets, 2 * radius + 1)
  band = tf.gather(tf.concat([gaussian_kernel(sigma, radius), [0.0]], 0), offsets)
  rows = _blur_rows(tf.reshape(image, [size, -1]), band, radius, block)  # [H, W C]
  columns = tf.reshape(tf.transpose(rows), [size, -1])  # [W C, H] as [W, C H]
  columns = _blur_rows(columns, band, radius, block)
  return tf.reshape(tf.transpose(tf.reshape(columns, [-1, size])), [size, size, channels])


def solarize(image, threshold=SOLARIZE_THRESHOLD):
  """Inverts the pixels at or above `threshold`.

  At the default 0.5 this is min(x, 1 - x), the same values as the select (1 - x is exact for
  x >= 0.5, and below 0.5, x < 1 - x) at a tenth of its cost.
  """
  if threshold == 0.5:
    return tf.minimum(image, 1.0 - image)
  return tf.where(image < threshold, image, 1.0 - image)


def normalize(image):
  """ImageNet mean/std normalisation of [..., 3] RGB in [0, 1]."""
  return (image - tf.constant(MEAN)) / tf.constant(STD)


def normalize_view(image):
  """normalize() of a view of static shape, as one multiply and one subtract by constants of
  the view's shape (equal to normalize() within float32 rounding): broadcasting a [3] vector
  over the last axis takes a slow path, about 0.4 ms per op on a 224 px view."""
  if not image.shape.is_fully_defined():
    return normalize(image)
  shape = image.shape.as_list()
  scale = np.broadcast_to(1 / np.array(STD, np.float32), shape)
  offset = np.broadcast_to(np.array(MEAN, np.float32) / np.array(STD, np.float32), shape)
  return image * tf.constant(scale) - tf.constant(offset)


def sample_augmentation(seed, view, color_strength=1.0):
  """Every random choice of BYOL's augmentation of view 1 or 2, from a [2] int seed.

  color_strength scales the four jitter ranges, as SimCLR's s (1: BYOL's; hue capped at 0.5).

  Returns a dict of scalars: bool `flip`, `color_jitter`, `grayscale`, `blur`, `solarize`;
  float32 `brightness_delta`, `contrast_factor`, `saturation_factor`, `hue_delta`, `sigma`;
  int32 [4] `order` (a uniform permutation of the jitter ops).
  """
  u = tf.random.stateless_uniform([14], seed)
  brightness, contrast, saturation = (color_strength * x for x in (BRIGHTNESS, CONTRAST,
                                                                   SATURATION))
  hue = min(color_strength * HUE, 0.5)

  def between(x, lo, hi):
    return lo + (hi - lo) * x

  return {
      'flip': u[0] < FLIP_PROB,
      'color_jitter': u[1] < COLOR_JITTER_PROB,
      'grayscale': u[2] < GRAYSCALE_PROB,
      'blur': u[3] < BLUR_PROB[view],
      'solarize': u[4] < SOLARIZE_PROB[view],
      'brightness_delta': between(u[5], -brightness, brightness),
      'contrast_factor': between(u[6], max(1.0 - contrast, 0.0), 1.0 + contrast),
      'saturation_factor': between(u[7], max(1.0 - saturation, 0.0), 1.0 + saturation),
      'hue_delta': between(u[8], -hue, hue),
      'sigma': between(u[9], *SIGMA_RANGE),
      'order': tf.argsort(u[10:14]),
  }


def apply_augmentation(image, params, apply_flip=True):
  """Flip, colour jitter, grayscale, blur, solarize, clip, normalise (BYOL's order).

  apply_flip=False leaves out the flip, for a view already mirrored where params['flip'] (as
  views.make_views(flips=...) does while resizing).
  """
  def maybe(flag, fn, x):
    return tf.cond(flag, lambda: fn(x), lambda: x)

  if apply_flip:
    image = maybe(params['flip'], flip, image)
  image = maybe(params['color_jitter'], lambda x: color_jitter(
      x, params['brightness_delta'], params['contrast_factor'], params['saturation_factor'],
      params['hue_delta'], params['order']), image)
  image = maybe(params['grayscale'], to_grayscale, image)
  image = maybe(params['blur'], lambda x: gaussian_blur(x, params['sigma']), image)
  image = maybe(params['solarize'], solarize, image)
  return normalize_view(tf.clip_by_value(image, 0.0, 1.0))


@tf.autograph.experimental.do_not_convert  # plain TF ops: skipping autograph halves tracing
def byol_augment(image, seed, view):
  """BYOL's augmentation of view 1 or 2 -> (normalised float32 image, bool flip)."""
  params = sample_augmentation(seed, view)
  return apply_augmentation(image, params), params['flip']
