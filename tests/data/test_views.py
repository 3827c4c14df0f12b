"""View pairs and decoding against numpy references: torchvision's crop sampler, pixel IoU,
full decode then crop, TF's half-pixel bilinear resize, and the DCT-scaled decode's sampling."""

import io
import math

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from multisiam_tf.data import views

AREA, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)
FRAME = (1280, 1920)


def torchvision_windows(rng, n, hw, area_range=AREA, ratio_range=RATIO):
  """torchvision's RandomResizedCrop.get_params, n times: [n, 4] pixel [y1, x1, y2, x2]."""
  height, width = hw
  out = []
  for _ in range(n):
    for _ in range(10):
      target = height * width * rng.uniform(*area_range)
      ratio = math.exp(rng.uniform(math.log(ratio_range[0]), math.log(ratio_range[1])))
      w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
      if 0 < w <= width and 0 < h <= height:
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        break
    else:
      raise AssertionError('fallback not expected for these ranges')
    out.append([y, x, y + h, x + w])
  return np.array(out, np.float64)


def ks_statistic(a, b):
  """Two-sample Kolmogorov-Smirnov distance."""
  grid = np.concatenate([a, b])
  fa = np.searchsorted(np.sort(a), grid, side='right') / len(a)
  fb = np.searchsorted(np.sort(b), grid, side='right') / len(b)
  return np.abs(fa - fb).max()


def pixel_windows(boxes, hw):
  """Normalised boxes back to pixel windows; hw is (h, w) or per box [n, 2]."""
  hw = np.asarray(hw, np.float64)
  return np.round(np.asarray(boxes, np.float64) * np.concatenate([hw, hw], -1))


def pixel_iou(a, b):
  h = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
  w = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
  area = lambda c: (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
  return h * w / (area(a) + area(b) - h * w)


def seed(*values):
  return tf.constant(values, tf.int64)


def test_crop_boxes_are_whole_pixels_inside_the_image():
  hw = (333, 517)
  b = views.sample_crop_boxes(seed(3, 4), hw, 4000, AREA, RATIO).numpy()
  assert b.shape == (4000, 4) and b.dtype == np.float32
  pixels = b.astype(np.float64) * np.array(hw * 2)
  np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
  w = np.round(pixels)
  assert np.all(w[:, :2] >= 0) and np.all(w[:, 2] <= hw[0]) and np.all(w[:, 3] <= hw[1])
  assert np.all(w[:, 2] > w[:, 0]) and np.all(w[:, 3] > w[:, 1])


def test_crop_box_scale_aspect_and_position_follow_torchvision():
  # a 3:2 frame rejects large boxes of small aspect ratio, so the kept distribution is not the
  # drawn one; compare with torchvision's algorithm run in numpy on the same frame.
  n = 10_000
  ours = pixel_windows(views.sample_crop_boxes(seed(5, 6), FRAME, n, AREA, RATIO), FRAME)
  ref = torchvision_windows(np.random.default_rng(7), n, FRAME)
  # alpha = 1e-4 per statistic: D > 2.23 * sqrt(2 / n) = 0.0315; sampling aspect uniformly
  # instead of log-uniformly moves its CDF by 0.07, so each check can fail.
  critical = math.sqrt(-0.5 * math.log(1e-4 / 2)) * math.sqrt(2 / n)

  def stats(w):
    h, wd = w[:, 2] - w[:, 0], w[:, 3] - w[:, 1]
    return {'area': h * wd / (FRAME[0] * FRAME[1]), 'log_aspect': np.log(wd / h),
            'y_centre': (w[:, 0] + w[:, 2]) / 2 / FRAME[0],
            'x_centre': (w[:, 1] + w[:, 3]) / 2 / FRAME[1]}

  ours, ref = stats(ours), stats(ref)
  for name in ours:
    assert ks_statistic(ours[name], ref[name]) < critical, name
  assert ours['area'].min() >= AREA[0] - 1e-3 and ours['area'].max() <= 1.0
  assert np.all(np.abs(ours['log_aspect']) <= math.log(4 / 3) + 0.01)


@pytest.mark.parametrize('hw, area_range, ratio_range, expected', [
    ((100, 400), (1.0, 1.0), (0.5, 1.0), (0, 150, 100, 250)),  # too wide: clamp to the max ratio
    ((400, 100), (1.0, 1.0), (1.0, 2.0), (150, 0, 250, 100)),  # too tall: clamp to the min ratio
    ((200, 200), (1.0, 1.0), (0.9, 0.95), (0, 5, 200, 195)),  # square: clamp to the max
])
def test_centre_crop_when_no_draw_fits(hw, area_range, ratio_range, expected):
  b = views.sample_crop_boxes(seed(1, 1), hw, 5, area_range, ratio_range).numpy()
  np.testing.assert_array_equal(pixel_windows(b, hw), np.tile(expected, [5, 1]))


def sample_pairs(thresholds, image_hws, max_pair_tries=100, candidates=32):
  """sample_pair inside tf.data (graph mode) for many seeds; numpy outputs."""
  n = len(image_hws)
  ds = tf.data.Dataset.from_tensor_slices(
      (np.arange(n), image_hws.astype(np.int32), np.asarray(thresholds, np.float32)))
  pair = lambda i, hw, t: views.sample_pair(tf.stack([i, 11]), hw, t, max_pair_tries, candidates,
                                            AREA, RATIO)
  ds = ds.map(tf.autograph.experimental.do_not_convert(pair), num_parallel_calls=2).batch(n)
  return [x.numpy() for x in next(iter(ds))]


def test_pairs_meet_the_pixel_iou_threshold_or_fall_back_to_one_box():
  rng = np.random.default_rng(8)
  n = 10_000  # over thresholds 0.3, 0.5, 0.7; half 1920x1280 frames, half random up to 64:1
  thresholds = np.array([0.3, 0.5, 0.7])[np.arange(n) % 3]
  hws = np.where(rng.uniform(size=(n, 1)) < 0.5, [[1280, 1920]], rng.integers(32, 2049, (n, 2)))
  box1, box2, fallback = sample_pairs(thresholds, hws)
  iou = pixel_iou(pixel_windows(box1, hws), pixel_windows(box2, hws))
  assert np.all(iou[~fallback] >= thresholds[~fallback])
  np.testing.assert_array_equal(box1[fallback], box2[fallback])
  assert fallback.mean() < 0.05
  assert np.all((box1 >= 0) & (box1 <= 1) & (box2 >= 0) & (box2 <= 1))


def first_passing_pair(pair_seed, hw, threshold, max_pair_tries, candidates):
  """The sampler's rule in numpy on its own candidate draws: the first of max_pair_tries pairs
  with pixel IoU >= threshold, else the first box twice."""
  steps = -(-max_pair_tries // candidates)
  drawn = draw_candidates(pair_seed, hw, steps, 2 * candidates).numpy()
  drawn = drawn.reshape(steps, 2, candidates, 4).transpose(0, 2, 1, 3).reshape(-1, 2, 4)
  drawn = drawn[:max_pair_tries]
  passed = np.flatnonzero(pixel_iou(drawn[:, 0], drawn[:, 1]) >= threshold)
  if passed.size:
    return drawn[passed[0], 0], drawn[passed[0], 1], False
  return drawn[0, 0], drawn[0, 0], True


@tf.function(autograph=False)
def draw_candidates(pair_seed, hw, steps, num):
  return tf.stack([views.sample_crop_windows(tf.random.fold_in(pair_seed, step), hw, num, AREA,
                                             RATIO) for step in range(steps)])


@pytest.mark.parametrize('threshold, max_pair_tries, candidates', [
    (0.0, 100, 32),  # BYOL: the first pair, whatever its overlap
    (0.7, 40, 32),  # 40 tries = one step of 32 pairs and 8 of the next, counted singly
    (0.9, 5, 2),  # mostly fallbacks
])
def test_pair_is_the_first_passing_candidate_within_max_tries(threshold, max_pair_tries,
                                                              candidates):
  rng = np.random.default_rng(9)
  sample = tf.function(lambda s, hw: views.sample_pair(s, hw, threshold, max_pair_tries,
                                                       candidates, AREA, RATIO), autograph=False)
  outcomes = []
  for i in range(40):
    hw = rng.integers(32, 2049, 2).astype(np.int32)
    pair_seed = seed(i, 99)
    box1, box2, fallback = sample(pair_seed, hw)
    w1, w2, expected_fallback = first_passing_pair(pair_seed, hw, threshold, max_pair_tries,
                                                   candidates)
    np.testing.assert_array_equal(pixel_windows(box1.numpy(), hw), w1)
    np.testing.assert_array_equal(pixel_windows(box2.numpy(), hw), w2)
    assert bool(fallback) == expected_fallback
    outcomes.append((expected_fallback, pixel_iou(w1[None], w2[None])[0]))
  fallbacks, ious = np.array(outcomes).T
  if threshold == 0:
    assert not fallbacks.any() and (ious < 0.3).any()  # unconstrained pairs do occur
  else:
    assert 0 < fallbacks.mean() < 1  # both branches exercised


def test_same_seed_same_pair_different_seed_different_pair():
  def pair(s):
    return [x.numpy() for x in views.sample_pair(seed(*s), FRAME, 0.5, 100, 32, AREA, RATIO)]
  a, b, c = pair((1, 2)), pair((1, 2)), pair((1, 3))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


def smooth_image(rng, hw, cell=32):
  """Natural-image-like pixels: random colours bicubically interpolated over `cell` pixels."""
  coarse = rng.uniform(0, 255, (hw[0] // cell + 2, hw[1] // cell + 2, 3)).astype(np.float32)
  fine = tf.image.resize(coarse, hw, 'bicubic').numpy()
  return np.clip(np.round(fine), 0, 255).astype(np.uint8)


def encode(pixels, fmt, **options):
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, fmt, **options)
  return buffer.getvalue()


def random_windows(rng, hw, n):
  h = rng.integers(2, hw[0] + 1, n)
  w = rng.integers(2, hw[1] + 1, n)
  y, x = rng.integers(0, hw[0] - h + 1), rng.integers(0, hw[1] - w + 1)
  return np.stack([y, x, y + h, x + w], 1)


def jpegs_444(rng, pixels):
  return [tf.io.encode_jpeg(pixels, quality=int(rng.integers(50, 100)), chroma_downsampling=False),
          encode(pixels, 'JPEG', quality=90, subsampling=0),
          encode(pixels, 'JPEG', quality=85, subsampling=0, progressive=True)]


def jpegs_420(rng, pixels):
  return [tf.io.encode_jpeg(pixels, quality=int(rng.integers(50, 100)), chroma_downsampling=True),
          encode(pixels, 'JPEG', quality=90, subsampling=2)]


def test_decode_window_equals_full_decode_then_crop_for_444_jpegs():
  rng = np.random.default_rng(10)
  hw = (157, 211)
  pixels = rng.integers(0, 256, hw + (3,), dtype=np.uint8)  # noise: the hardest case
  for jpeg in jpegs_444(rng, pixels):
    full = views.decode_rgb(jpeg).numpy()
    for y1, x1, y2, x2 in random_windows(rng, hw, 15):
      np.testing.assert_array_equal(views.decode_window(jpeg, [y1, x1, y2, x2]).numpy(),
                                    full[y1:y2, x1:x2])


def test_decode_window_of_420_jpegs_differs_only_on_its_outer_ring():
  rng = np.random.default_rng(11)
  hw = (203, 181)
  pixels = smooth_image(rng, hw)
  for jpeg in jpegs_420(rng, pixels):
    full = views.decode_rgb(jpeg).numpy().astype(int)
    ring_max = 0
    for y1, x1, y2, x2 in random_windows(rng, hw, 15):
      diff = np.abs(views.decode_window(jpeg, [y1, x1, y2, x2]).numpy() - full[y1:y2, x1:x2])
      assert diff[1:-1, 1:-1].max(initial=0) == 0
      ring_max = max(ring_max, diff.max())
    # chroma upsampling interpolates over 2 pixels; ~10 levels on 32-pixel colour gradients
    assert ring_max <= 16


def view_kwargs(**overrides):
  kw = dict(image_size=48, iou_threshold=0.5, max_pair_tries=100, pair_candidates=32,
            area_range=AREA, aspect_ratio_range=RATIO, decode_and_crop=True)
  kw.update(overrides)
  return kw


def np_resize_bilinear(image, size):
  """TF's bilinear resize with half-pixel centres, unantialiased."""
  def axis(n):
    x = (np.arange(size) + 0.5) * n / size - 0.5
    lower = np.floor(x)
    frac = x - lower
    return (np.clip(lower, 0, n - 1).astype(int), np.clip(lower + 1, 0, n - 1).astype(int), frac)
  (y0, y1, fy), (x0, x1, fx) = axis(image.shape[0]), axis(image.shape[1])
  image = image.astype(np.float64)
  rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
  return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def test_make_views_crop_path_equals_full_decode_path_for_444_jpegs():
  # the ratio-1 path (no DCT scaling) is the full decode's crop, bit for bit; the scaled path is
  # tested against the scaled decode below
  rng = np.random.default_rng(12)
  pixels = smooth_image(rng, (240, 320), cell=8)
  for jpeg in jpegs_444(rng, pixels):
    for s in range(3):
      cropped = views.make_views(jpeg, seed(s, 1), **view_kwargs(max_decode_ratio=1))
      full = views.make_views(jpeg, seed(s, 1), **view_kwargs(decode_and_crop=False))
      for key in cropped:
        np.testing.assert_array_equal(cropped[key].numpy(), full[key].numpy(), key)


def test_make_views_crop_path_is_close_to_full_decode_path_for_420_jpegs():
  rng = np.random.default_rng(13)
  pixels = smooth_image(rng, (240, 320))
  for jpeg in jpegs_420(rng, pixels):
    cropped = views.make_views(jpeg, seed(4, 2), **view_kwargs(max_decode_ratio=1))
    full = views.make_views(jpeg, seed(4, 2), **view_kwargs(decode_and_crop=False))
    for key in ('view1', 'view2'):
      assert np.abs(cropped[key].numpy() - full[key].numpy()).max() <= 16 / 255


@pytest.mark.parametrize('kind', ['rgb', 'gray', 'rgba', 'rgb16', 'gray_jpeg'])
def test_views_are_the_boxes_of_the_decoded_image_resized(kind):
  rng = np.random.default_rng(14)
  hw = (int(rng.integers(60, 200)), int(rng.integers(60, 200)))
  rgb = smooth_image(rng, hw, cell=8)
  if kind == 'rgb':
    encoded, expected = tf.io.encode_png(rgb), rgb
  elif kind == 'gray':
    encoded, expected = tf.io.encode_png(rgb[..., :1]), np.repeat(rgb[..., :1], 3, -1)
  elif kind == 'rgba':
    alpha = rng.integers(0, 256, hw + (1,), dtype=np.uint8)
    encoded, expected = tf.io.encode_png(np.concatenate([rgb, alpha], -1)), rgb
  elif kind == 'rgb16':
    deep = rgb.astype(np.uint16) * 257 + rng.integers(0, 257, rgb.shape).astype(np.uint16)
    encoded, expected = tf.io.encode_png(deep), (deep >> 8).astype(np.uint8)
  else:
    encoded = encode(rgb[..., 0], 'JPEG', quality=95)
    expected = views.decode_rgb(encoded).numpy()
    assert np.array_equal(expected[..., 0], expected[..., 2])
  np.testing.assert_array_equal(tf.shape(views.decode_rgb(encoded))[:2].numpy(), hw)
  # ratio 1: the box of the full-resolution decode, resized (the DCT-scaled path: tests below)
  out = views.make_views(encoded, seed(7, 7), **view_kwargs(max_decode_ratio=1))
  box1, box2, fallback = views.sample_pair(seed(7, 7), hw, 0.5, 100, 32, AREA, RATIO)
  np.testing.assert_array_equal(out['box1'].numpy(), box1.numpy())
  np.testing.assert_array_equal(out['box2'].numpy(), box2.numpy())
  assert out['fallback'].numpy() == fallback.numpy()
  for v in ('1', '2'):
    view = out['view' + v].numpy()
    assert view.shape == (48, 48, 3) and view.dtype == np.float32
    assert view.min() >= 0 and view.max() <= 1
    y1, x1, y2, x2 = pixel_windows(out['box' + v].numpy()[None], hw)[0].astype(int)
    np.testing.assert_allclose(view, np_resize_bilinear(expected[y1:y2, x1:x2], 48) / 255,
                               atol=1e-4)


def test_make_views_in_a_tf_data_map_over_mixed_formats():
  rng = np.random.default_rng(15)
  images = [smooth_image(rng, (int(h), int(w)), cell=8) for h, w in rng.integers(40, 120, (4, 2))]
  encoded = [tf.io.encode_jpeg(images[0]).numpy(), tf.io.encode_png(images[1]).numpy(),
             encode(images[2], 'JPEG', subsampling=2), encode(images[3], 'BMP')]
  ds = tf.data.Dataset.from_tensor_slices(encoded).enumerate().map(
      lambda i, e: views.make_views(e, tf.stack([i, 0]), **view_kwargs(iou_threshold=0.7)))
  outputs = list(ds)
  assert len(outputs) == len(images)
  for out, image in zip(outputs, images):
    assert out['view1'].shape == (48, 48, 3) and out['view2'].dtype == tf.float32
    assert out['box1'].shape == (4,) and out['fallback'].dtype == tf.bool
    windows = pixel_windows(np.stack([out['box1'], out['box2']]), image.shape[:2])
    assert np.all(windows[:, 2:] <= image.shape[:2]) and np.all(windows[:, 2:] > windows[:, :2])


@pytest.mark.parametrize('side, image_size, max_ratio, expected', [
    (447, 224, 8, 1), (448, 224, 8, 2), (895, 224, 8, 2), (896, 224, 8, 4), (1792, 224, 8, 8),
    (5000, 224, 8, 8), (5000, 224, 2, 2), (5000, 224, 1, 1), (100, 48, 8, 2), (20, 48, 8, 1)])
def test_decode_ratio_is_the_coarsest_keeping_every_window_side_at_least_image_size(
    side, image_size, max_ratio, expected):
  # the smaller window's shorter side decides: here window 2 is side x (side + 50)
  windows = tf.constant([[0, 0, side + 300, side + 400], [10, 20, 10 + side, 70 + side]],
                        tf.float32)
  assert int(views.decode_ratio(windows, image_size, max_ratio)) == expected


def test_scaled_decode_window_equals_the_scaled_full_decode_cropped():
  # at 1/2, 1/4, 1/8 libjpeg scales 4:2:0 chroma in the DCT too: no upsampling, so no outer
  # ring (4:2:2 chroma is still upsampled at r = 2, 4 and keeps one); the scaled image is
  # ceil(H / r) x ceil(W / r)
  rng = np.random.default_rng(20)
  hw = (203, 181)
  pixels = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
  for jpeg in jpegs_444(rng, pixels) + jpegs_420(rng, pixels):
    for ratio in (2, 4, 8):
      full = tf.io.decode_jpeg(jpeg, channels=3, ratio=ratio).numpy()
      assert full.shape[:2] == tuple(-(-n // ratio) for n in hw)
      for y1, x1, y2, x2 in random_windows(rng, full.shape[:2], 5):
        np.testing.assert_array_equal(
            views.decode_window(jpeg, [y1, x1, y2, x2], ratio).numpy(), full[y1:y2, x1:x2])


def np_bilinear_at(image, ys, xs):
  """Bilinear samples of `image` at rows `ys` x columns `xs` (pixel-centre coordinates)."""
  image = image.astype(np.float64)

  def axis(q, n):
    lower = np.floor(q).astype(int)
    return np.clip(lower, 0, n - 1), np.clip(lower + 1, 0, n - 1), q - lower
  (y0, y1, fy), (x0, x1, fx) = axis(ys, image.shape[0]), axis(xs, image.shape[1])
  rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
  return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def box_average(image, ratio):
  """Mean of each ratio x ratio block (edge blocks padded by repetition): [ceil(H / r), ...]."""
  h, w = image.shape[:2]
  padded = np.pad(image.astype(np.float64), [(0, -h % ratio), (0, -w % ratio), (0, 0)], 'edge')
  return padded.reshape(padded.shape[0] // ratio, ratio, padded.shape[1] // ratio, ratio,
                        3).mean((1, 3))


def scaled_view_cases(hw, cell, n_seeds):
  """(jpeg, ratio, window, view, flip) for the views of n_seeds pairs that take the scaled path."""
  rng = np.random.default_rng(hw[0] + cell)
  pixels = smooth_image(rng, hw, cell=cell)
  cases = []
  for jpeg in (encode(pixels, 'JPEG', quality=90, subsampling=0),
               encode(pixels, 'JPEG', quality=90, subsampling=2)):
    for s in range(n_seeds):
      flips = (bool(s % 2), bool(s % 3 == 0))
      out = views.make_views(jpeg, seed(s, 3), **view_kwargs(flips=flips))
      windows = np.stack([pixel_windows(out[b].numpy(), hw) for b in ('box1', 'box2')])
      ratio = int(views.decode_ratio(tf.constant(windows, tf.float32), 48))
      if ratio > 1:
        cases += [(jpeg, ratio, windows[k], out[v].numpy(), flips[k])
                  for k, v in enumerate(('view1', 'view2'))]
  return cases


def sample_points(window, size=48):
  """Where a half-pixel bilinear resize of the pixel window to size x size samples it."""
  y1, x1, y2, x2 = window
  return (y1 + (np.arange(size) + 0.5) * (y2 - y1) / size - 0.5,
          x1 + (np.arange(size) + 0.5) * (x2 - x1) / size - 0.5)


@pytest.mark.parametrize('hw', [(240, 320), (480, 640)])
def test_scaled_views_sample_the_scaled_image_where_the_full_resize_samples(hw):
  # The geometry is exact: each view is the scaled decode sampled bilinearly at the points
  # where resizing its full-resolution window samples, p -> (p + 0.5) / r - 0.5 (scaled pixel k
  # covers original pixels [k r, (k + 1) r)); mirrored where flipped. Float32 box arithmetic
  # and the 1e-3 px inset of the last sample move a sample by <= 1e-3 scaled px: on these
  # smooth images 1e-4 of the [0, 1] range bounds that (measured 6e-6).
  cases = scaled_view_cases(hw, 16, 10)
  assert {c[1] for c in cases} >= ({2, 4} if hw[0] == 240 else {4, 8})  # ratios exercised
  for jpeg, ratio, window, view, flip in cases:
    ys, xs = sample_points(window)
    scaled = tf.io.decode_jpeg(jpeg, channels=3, ratio=ratio).numpy()
    expected = np_bilinear_at(scaled, (ys + 0.5) / ratio - 0.5, (xs + 0.5) / ratio - 0.5) / 255
    np.testing.assert_allclose(view, expected[:, ::-1] if flip else expected, atol=1e-4)
    assert view.min() >= 0 and view.max() <= 1


def test_scaled_views_are_the_box_averaged_image_resized():
  # DCT scaling keeps each 8x8 block's lowest frequencies, a low-pass close to averaging r x r
  # pixels: against the full decode box-averaged and sampled at the same points, views of
  # smooth images (detail at 32 px) differ by about 1 level of 255 on average and a few at
  # most (measured mean 0.95, max 4.1 over both subsamplings)
  for jpeg, ratio, window, view, flip in scaled_view_cases((480, 640), 32, 12):
    ys, xs = sample_points(window)
    reference = np_bilinear_at(box_average(tf.io.decode_jpeg(jpeg, channels=3).numpy(), ratio),
                               (ys + 0.5) / ratio - 0.5, (xs + 0.5) / ratio - 0.5) / 255
    diff = np.abs(view - (reference[:, ::-1] if flip else reference)) * 255
    assert diff.mean() <= 2.0 and diff.max() <= 12.0, (ratio, diff.mean(), diff.max())


def test_boxes_are_exact_whatever_the_decode_ratio():
  rng = np.random.default_rng(22)
  hw = (480, 640)
  jpeg = encode(smooth_image(rng, hw), 'JPEG', quality=90)
  ratios = set()
  for s in range(8):
    out = views.make_views(jpeg, seed(s, 5), **view_kwargs())
    box1, box2, fallback = views.sample_pair(seed(s, 5), hw, 0.5, 100, 32, AREA, RATIO)
    np.testing.assert_array_equal(out['box1'].numpy(), box1.numpy())
    np.testing.assert_array_equal(out['box2'].numpy(), box2.numpy())
    assert out['fallback'].numpy() == fallback.numpy()
    ratios.add(int(views.decode_ratio(pixel_windows(np.stack([box1, box2]), hw), 48)))
  assert ratios - {1}, ratios  # the DCT-scaled path was taken


@pytest.mark.parametrize('max_decode_ratio', [1, 8])
def test_flips_mirror_the_views_and_leave_the_boxes(max_decode_ratio):
  rng = np.random.default_rng(23)
  jpeg = encode(smooth_image(rng, (240, 320)), 'JPEG', quality=90)
  for s in range(4):
    kwargs = view_kwargs(max_decode_ratio=max_decode_ratio)
    plain = views.make_views(jpeg, seed(s, 6), **kwargs)
    flipped = views.make_views(jpeg, seed(s, 6), **kwargs, flips=(True, False))
    for key in ('box1', 'box2', 'fallback'):
      np.testing.assert_array_equal(plain[key].numpy(), flipped[key].numpy())
    np.testing.assert_array_equal(plain['view2'].numpy(), flipped['view2'].numpy())
    # ratio 1 reverses the resized view; the scaled path samples the same points right to left
    np.testing.assert_allclose(flipped['view1'].numpy(), plain['view1'].numpy()[:, ::-1],
                               atol=0 if max_decode_ratio == 1 else 1e-4)
