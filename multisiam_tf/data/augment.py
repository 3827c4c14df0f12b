"""BYOL's asymmetric photometric augmentations (BYOL App. B; METHOD.md section 1).

`sample_augmentation` draws every random choice of one view from a stateless seed;
`apply_augmentation` applies them with the deterministic ops below; `byol_augment` does both.
Images are float32 [S, S, 3] in [0, 1] until `normalize`.
"""

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

  Clips after each op, as SimCLR's TF code: the HSV ops assume [0, 1].
  """
  ops = [lambda x: adjust_brightness(x, brightness_delta),
         lambda x: adjust_contrast(x, contrast_factor),
         lambda x: adjust_saturation(x, saturation_factor),
         lambda x: adjust_hue(x, hue_delta)]
  for slot in range(4):
    image = tf.clip_by_value(
        tf.switch_case(order[slot], [lambda op=op: op(image) for op in ops]), 0.0, 1.0)
  return image


def to_grayscale(image):
  """ITU-R 601 luma (tf.image.rgb_to_grayscale), repeated over 3 channels."""
  return tf.tile(tf.image.rgb_to_grayscale(image), [1, 1, 3])


def gaussian_kernel(sigma, radius):
  """Normalised 1-D gaussian of 2 * radius + 1 taps."""
  x = tf.range(-radius, radius + 1, dtype=tf.float32)
  k = tf.exp(-tf.square(x) / (2.0 * tf.square(tf.cast(sigma, tf.float32))))
  return k / tf.reduce_sum(k)


def blur_radius(image_size):
  """BYOL's kernel of 10% of the side, made odd: 23 taps at 224."""
  return image_size // 10 // 2


def reflect_blur_matrix(sigma, size):
  """[size, size] matrix A with A @ x = 1-D gaussian blur of x's rows under reflect padding."""
  radius = blur_radius(size)
  source = tf.abs(tf.range(size)[:, None] + tf.range(-radius, radius + 1)[None])
  source = tf.where(source > size - 1, 2 * (size - 1) - source, source)  # reflect, edge unrepeated
  taps = tf.one_hot(source, size) * gaussian_kernel(sigma, radius)[None, :, None]
  return tf.reduce_sum(taps, axis=1)


def gaussian_blur(image, sigma):
  """Separable gaussian blur of [S, S, C] with reflect padding (torchvision's GaussianBlur).

  Both 1-D passes are matrix products: several times faster on CPU than depthwise convolution.
  """
  a = reflect_blur_matrix(sigma, image.shape[0])
  return tf.einsum('ij,jkc,lk->ilc', a, image, a)


def solarize(image, threshold=SOLARIZE_THRESHOLD):
  """Inverts the pixels at or above `threshold`."""
  return tf.where(image < threshold, image, 1.0 - image)


def normalize(image):
  """ImageNet mean/std normalisation of [..., 3] RGB in [0, 1]."""
  return (image - tf.constant(MEAN)) / tf.constant(STD)


def sample_augmentation(seed, view):
  """Every random choice of BYOL's augmentation of view 1 or 2, from a [2] int seed.

  Returns a dict of scalars: bool `flip`, `color_jitter`, `grayscale`, `blur`, `solarize`;
  float32 `brightness_delta`, `contrast_factor`, `saturation_factor`, `hue_delta`, `sigma`;
  int32 [4] `order` (a uniform permutation of the jitter ops).
  """
  u = tf.random.stateless_uniform([14], seed)

  def between(x, lo, hi):
    return lo + (hi - lo) * x

  return {
      'flip': u[0] < FLIP_PROB,
      'color_jitter': u[1] < COLOR_JITTER_PROB,
      'grayscale': u[2] < GRAYSCALE_PROB,
      'blur': u[3] < BLUR_PROB[view],
      'solarize': u[4] < SOLARIZE_PROB[view],
      'brightness_delta': between(u[5], -BRIGHTNESS, BRIGHTNESS),
      'contrast_factor': between(u[6], 1.0 - CONTRAST, 1.0 + CONTRAST),
      'saturation_factor': between(u[7], 1.0 - SATURATION, 1.0 + SATURATION),
      'hue_delta': between(u[8], -HUE, HUE),
      'sigma': between(u[9], *SIGMA_RANGE),
      'order': tf.argsort(u[10:14]),
  }


def apply_augmentation(image, params):
  """Flip, colour jitter, grayscale, blur, solarize, clip, normalise (BYOL's order)."""
  def maybe(flag, fn, x):
    return tf.cond(flag, lambda: fn(x), lambda: x)

  image = maybe(params['flip'], flip, image)
  image = maybe(params['color_jitter'], lambda x: color_jitter(
      x, params['brightness_delta'], params['contrast_factor'], params['saturation_factor'],
      params['hue_delta'], params['order']), image)
  image = maybe(params['grayscale'], to_grayscale, image)
  image = maybe(params['blur'], lambda x: gaussian_blur(x, params['sigma']), image)
  image = maybe(params['solarize'], solarize, image)
  return normalize(tf.clip_by_value(image, 0.0, 1.0))


@tf.autograph.experimental.do_not_convert  # plain TF ops: skipping autograph halves tracing
def byol_augment(image, seed, view):
  """BYOL's augmentation of view 1 or 2 -> (normalised float32 image, bool flip)."""
  params = sample_augmentation(seed, view)
  return apply_augmentation(image, params), params['flip']
