"""BYOL augmentations against numpy, and their rates and ranges over 10,000 seeds per view."""

import math

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.data import augment

N_SEEDS = 10_000


def np_blur(image, sigma):
  """Separable gaussian, 2r + 1 taps with r = S // 10 // 2, reflect padding without edge repeat."""
  r = image.shape[0] // 10 // 2
  k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma ** 2))
  k /= k.sum()
  padded = np.pad(image.astype(np.float64), [(r, r), (r, r), (0, 0)], mode='reflect')
  rows = sum(k[i] * padded[i:i + image.shape[0]] for i in range(2 * r + 1))
  return sum(k[i] * rows[:, i:i + image.shape[1]] for i in range(2 * r + 1))


def np_gray(image):
  y = image @ np.array([0.2989, 0.5870, 0.1140])
  return np.repeat(y[..., None], 3, -1)


def np_normalize(image):
  return (image - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])


def random_image(rng, size=64):
  return rng.uniform(0, 1, (size, size, 3)).astype(np.float32)


@pytest.mark.parametrize('size', [32, 50, 64, 100, 224])  # 50, 100: blocks of 32 overhang
def test_gaussian_blur_matches_numpy_separable_reflect(size):
  rng = np.random.default_rng(size)
  image = random_image(rng, size)
  for sigma in rng.uniform(*augment.SIGMA_RANGE, 3):
    np.testing.assert_allclose(augment.gaussian_blur(image, sigma).numpy(),
                               np_blur(image, sigma), atol=2e-5)
  assert 2 * augment.blur_radius(224) + 1 == 23


def test_solarize_grayscale_flip_normalize_match_numpy():
  image = random_image(np.random.default_rng(1))
  np.testing.assert_allclose(augment.solarize(image).numpy(),
                             np.where(image < 0.5, image, 1 - image))
  np.testing.assert_allclose(augment.to_grayscale(image).numpy(), np_gray(image), atol=1e-5)
  np.testing.assert_array_equal(augment.flip(image).numpy(), image[:, ::-1])
  np.testing.assert_allclose(augment.normalize(image).numpy(), np_normalize(image), atol=1e-5)


def test_solarize_as_a_minimum_is_the_select_bit_for_bit():
  rng = np.random.default_rng(5)
  image = np.concatenate([random_image(rng).ravel(), [0.0, 0.5, np.nextafter(0.5, 0), 1.0]])
  image = image.astype(np.float32)
  np.testing.assert_array_equal(augment.solarize(image).numpy(),
                                np.where(image < 0.5, image, np.float32(1) - image))
  np.testing.assert_array_equal(augment.solarize(image, 0.3).numpy(),
                                np.where(image < 0.3, image, np.float32(1) - image))


def test_normalize_view_is_normalize():
  image = random_image(np.random.default_rng(6), 32)
  np.testing.assert_allclose(augment.normalize_view(tf.constant(image)).numpy(),
                             augment.normalize(image).numpy(), atol=1e-6)


@pytest.mark.parametrize('order', [[2, 3, 0, 1], [3, 2, 1, 0], [0, 2, 1, 3]])
def test_hsv_ops_keep_images_in_range_so_jitter_clips_only_brightness_and_contrast(order):
  # color_jitter clips after brightness and contrast only: the HSV ops move a value between its
  # pixel's channel min and max, so the clips after them, as SimCLR writes, change nothing
  image = random_image(np.random.default_rng(7))
  for params in ((0.4, 1.4, 1.2, 0.1), (-0.4, 0.6, 0.8, -0.1), (0.0, 1.0, 1.2, 0.05)):
    got = augment.color_jitter(image, *params, tf.constant(order)).numpy()
    ops = [lambda x: augment.adjust_brightness(x, params[0]),
           lambda x: augment.adjust_contrast(x, params[1]),
           lambda x: augment.adjust_saturation(x, params[2]),
           lambda x: augment.adjust_hue(x, params[3])]
    expected = image
    for op in order:
      expected = tf.clip_by_value(ops[op](expected), 0.0, 1.0)
    assert got.min() >= 0 and got.max() <= 1
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


def np_brightness_contrast(image, delta, factor, brightness_first):
  """Brightness then contrast (or the reverse), clipping after each as color_jitter does."""
  brightness = lambda x: np.clip(x + delta, 0, 1)
  contrast = lambda x: np.clip((x - x.mean((0, 1))) * factor + x.mean((0, 1)), 0, 1)
  return contrast(brightness(image)) if brightness_first else brightness(contrast(image))


def test_color_jitter_applies_its_ops_in_the_given_order():
  rng = np.random.default_rng(2)
  image = random_image(rng)
  delta, factor = 0.3, 1.4  # large enough that clipping makes the order visible
  outputs = []
  for order, brightness_first in (([0, 1, 2, 3], True), ([2, 1, 3, 0], False)):
    got = augment.color_jitter(image, delta, factor, 1.0, 0.0, tf.constant(order)).numpy()
    np.testing.assert_allclose(got, np_brightness_contrast(image, delta, factor,
                                                           brightness_first), atol=1e-5)
    outputs.append(got)
  assert np.abs(outputs[0] - outputs[1]).max() > 0.05


def sample_many(view, color_strength=1.0):
  """sample_augmentation over N_SEEDS seeds, inside tf.data (graph mode)."""
  draw = lambda i: augment.sample_augmentation(tf.stack([i, 3]), view, color_strength)
  ds = tf.data.Dataset.range(N_SEEDS).map(tf.autograph.experimental.do_not_convert(draw),
                                          num_parallel_calls=2)
  return {k: v.numpy() for k, v in next(iter(ds.batch(N_SEEDS))).items()}


RATES = {  # (view 1, view 2), BYOL App. B
    'flip': (0.5, 0.5), 'color_jitter': (0.8, 0.8), 'grayscale': (0.2, 0.2),
    'blur': (1.0, 0.1), 'solarize': (0.0, 0.2)}
RANGES = {
    'brightness_delta': (-0.4, 0.4), 'contrast_factor': (0.6, 1.4),
    'saturation_factor': (0.8, 1.2), 'hue_delta': (-0.1, 0.1), 'sigma': (0.1, 2.0)}


@pytest.mark.parametrize('view', [1, 2])
def test_rates_ranges_and_orders_over_many_seeds(view):
  draws = sample_many(view)
  for name, rates in RATES.items():
    p = rates[view - 1]
    bound = 4 * math.sqrt(p * (1 - p) / N_SEEDS)  # 4 sigma; exact for p in {0, 1}
    assert abs(draws[name].mean() - p) <= bound, (name, draws[name].mean(), p)
  for name, (lo, hi) in RANGES.items():
    x = draws[name]
    assert x.min() >= lo and x.max() <= hi, name
    # uniform: each decile holds a tenth, within 4 sigma
    counts = np.histogram(x, np.linspace(lo, hi, 11))[0] / N_SEEDS
    assert np.abs(counts - 0.1).max() <= 4 * math.sqrt(0.09 / N_SEEDS), name
  order = draws['order']
  np.testing.assert_array_equal(np.sort(order, axis=1), np.tile(np.arange(4), [N_SEEDS, 1]))
  slot_rates = np.stack([(order == op).mean(0) for op in range(4)])  # op x slot
  assert np.abs(slot_rates - 0.25).max() <= 4 * math.sqrt(0.1875 / N_SEEDS)
  decisions = np.stack([draws[name] for name in RATES], 1).astype(float)
  independent = np.corrcoef(decisions[:, decisions.std(0) > 0].T) - np.eye(
      int((decisions.std(0) > 0).sum()))
  assert np.abs(independent).max() <= 4 / math.sqrt(N_SEEDS)


@pytest.mark.parametrize('strength, ranges', [
    (0.5, {'brightness_delta': (-0.2, 0.2), 'contrast_factor': (0.8, 1.2),
           'saturation_factor': (0.9, 1.1), 'hue_delta': (-0.05, 0.05)}),
    (3.0, {'brightness_delta': (-1.2, 1.2), 'contrast_factor': (0.0, 2.2),
           'saturation_factor': (0.4, 1.6), 'hue_delta': (-0.3, 0.3)})])
def test_color_strength_scales_the_jitter_ranges(strength, ranges):
  draws = sample_many(1, strength)
  for name, (lo, hi) in ranges.items():
    x = draws[name]
    assert lo <= x.min() < lo + 0.02 * (hi - lo) and hi - 0.02 * (hi - lo) < x.max() <= hi, name


def no_augmentation():
  return {'flip': False, 'color_jitter': False, 'grayscale': False, 'blur': False,
          'solarize': False, 'brightness_delta': 0.3, 'contrast_factor': 1.4,
          'saturation_factor': 1.0, 'hue_delta': 0.0, 'sigma': 1.5,
          'order': tf.constant([0, 1, 2, 3])}


@pytest.mark.parametrize('flag, reference', [
    (None, lambda x: x),
    ('flip', lambda x: x[:, ::-1]),
    ('color_jitter', lambda x: np_brightness_contrast(x, 0.3, 1.4, True)),
    ('grayscale', np_gray),
    ('blur', lambda x: np_blur(x, 1.5)),
    ('solarize', lambda x: np.where(x < 0.5, x, 1 - x)),
])
def test_apply_augmentation_applies_exactly_the_drawn_ops(flag, reference):
  image = random_image(np.random.default_rng(3))
  params = no_augmentation()
  if flag:
    params[flag] = True
  got = augment.apply_augmentation(image, params).numpy()
  np.testing.assert_allclose(got, np_normalize(np.clip(reference(image), 0, 1)), atol=1e-4)


def test_apply_augmentation_can_leave_the_flip_to_the_resize():
  image = random_image(np.random.default_rng(8))
  params = no_augmentation()
  params['flip'] = True
  params['solarize'] = True
  mirrored = augment.apply_augmentation(image[:, ::-1], params, apply_flip=False).numpy()
  np.testing.assert_array_equal(mirrored, augment.apply_augmentation(image, params).numpy())


@pytest.mark.parametrize('view', [1, 2])
def test_byol_augment_output_and_seeding(view):
  image = random_image(np.random.default_rng(4), 48)
  out, flip = augment.byol_augment(image, tf.constant([5, 6]), view)
  assert out.shape == (48, 48, 3) and out.dtype == tf.float32 and flip.dtype == tf.bool
  pixels = out.numpy() * np.array(augment.STD) + np.array(augment.MEAN)
  assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
  assert bool(flip) == bool(augment.sample_augmentation(tf.constant([5, 6]), view)['flip'])
  again, _ = augment.byol_augment(image, tf.constant([5, 6]), view)
  np.testing.assert_array_equal(out.numpy(), again.numpy())
  other, _ = augment.byol_augment(image, tf.constant([5, 7]), view)
  assert not np.array_equal(out.numpy(), other.numpy())
