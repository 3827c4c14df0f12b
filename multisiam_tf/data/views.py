"""IoU-constrained view pairs and decoding only the pixels they need (METHOD.md section 1).

A view is a RandomResizedCrop window of the original image, on whole pixels, so that decoding
the window alone and cropping it from the full decode give the same pixels. Boxes leave this
module as `[y1, x1, y2, x2]` normalised to the original image; windows are the same in pixels.
Every function is stateless (`seed` is a `[2]` int tensor) and graph-safe inside `tf.data`.
"""

import math

import tensorflow as tf

from multisiam_tf.data import boxes

MAX_BOX_DRAWS = 10  # torchvision's RandomResizedCrop: 10 draws, then a centre crop


def _first_true(mask):
  """Index of the first True along the last axis (0 where none): argmax leaves ties unspecified."""
  n = tf.shape(mask)[-1]
  first = tf.reduce_min(tf.where(mask, tf.range(n), n), axis=-1)
  return tf.minimum(first, n - 1)


def _normalised(windows, hw):
  """Pixel windows as fractions of the image (divided, so i / H is correctly rounded)."""
  return windows / tf.tile(tf.cast(hw, tf.float32), [2])


def sample_crop_windows(seed, image_hw, num, area_range, aspect_ratio_range):
  """`num` RandomResizedCrop windows, float32 `[num, 4]` whole-pixel `[y1, x1, y2, x2]`.

  Area fraction ~ U(area_range), log(w / h) ~ U(log aspect_ratio_range); the first of
  MAX_BOX_DRAWS draws that fits is kept, else the centre crop of the clamped aspect ratio.
  """
  height, width = tf.unstack(tf.cast(image_hw, tf.float32), 2)
  u = tf.random.stateless_uniform([num, 2 * MAX_BOX_DRAWS + 2], seed)
  u_area, u_ratio, u_offset = tf.split(u, [MAX_BOX_DRAWS, MAX_BOX_DRAWS, 2], axis=1)
  area_fraction = area_range[0] + (area_range[1] - area_range[0]) * u_area
  log_lo, log_hi = math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1])
  ratio = tf.exp(log_lo + (log_hi - log_lo) * u_ratio)
  target_area = area_fraction * height * width
  w = tf.round(tf.sqrt(target_area * ratio))
  h = tf.round(tf.sqrt(target_area / ratio))
  fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = _first_true(fits)
  h, w = tf.gather(h, first, batch_dims=1), tf.gather(w, first, batch_dims=1)

  # torchvision's fallback: the largest centred window whose aspect ratio is clamped to the range
  in_ratio = width / height
  lo, hi = aspect_ratio_range
  centre_h = tf.where(in_ratio < lo, tf.round(width / lo), height)
  centre_w = tf.where(in_ratio > hi, tf.round(height * hi), width)
  found = tf.reduce_any(fits, axis=1)
  h, w = tf.where(found, h, centre_h), tf.where(found, w, centre_w)

  # uniform integer offsets in [0, size - crop] (torchvision's randint); centred on fallback
  y = tf.minimum(tf.floor(u_offset[:, 0] * (height - h + 1)), height - h)
  x = tf.minimum(tf.floor(u_offset[:, 1] * (width - w + 1)), width - w)
  y = tf.where(found, y, tf.floor((height - h) / 2))
  x = tf.where(found, x, tf.floor((width - w) / 2))
  return tf.stack([y, x, y + h, x + w], axis=1)


def sample_crop_boxes(seed, image_hw, num, area_range, aspect_ratio_range):
  """`num` RandomResizedCrop boxes, float32 `[num, 4]` normalised to the image, on whole pixels."""
  return _normalised(sample_crop_windows(seed, image_hw, num, area_range, aspect_ratio_range),
                     image_hw)


def sample_pair_windows(seed, image_hw, iou_threshold, max_pair_tries, candidates, area_range,
                        aspect_ratio_range):
  """Pixel windows (w1, w2, fallback) of the first pair with IoU >= iou_threshold.

  Draws `candidates` pairs per loop step; after `max_pair_tries` pairs (counted singly, the last
  step using only the remainder) without success returns w2 = w1 (the first window drawn) and
  fallback True. IoU is taken on pixel windows, whose areas are exact in float32.
  """
  candidates = min(candidates, max_pair_tries)
  steps = -(-max_pair_tries // candidates)

  def draw(step):
    windows = sample_crop_windows(tf.random.fold_in(seed, step), image_hw, 2 * candidates,
                                  area_range, aspect_ratio_range)
    w1, w2 = windows[:candidates], windows[candidates:]
    tried = tf.range(candidates) < max_pair_tries - step * candidates
    passed = (boxes.iou(w1, w2) >= iou_threshold) & tried
    first = _first_true(passed)
    return tf.reduce_any(passed), w1[first], w2[first], w1[0]

  def body(step, _, w1, w2):
    found, w1, w2, _ = draw(step)
    return step + 1, found, w1, w2

  found, w1, w2, first_window = draw(0)
  _, found, w1, w2 = tf.while_loop(
      lambda step, found, w1, w2: tf.logical_not(found) & (step < steps),
      body, (tf.constant(1), found, w1, w2))
  return tf.where(found, w1, first_window), tf.where(found, w2, first_window), ~found


def sample_pair(seed, image_hw, iou_threshold, max_pair_tries, candidates, area_range,
                aspect_ratio_range):
  """Boxes (box1, box2, fallback) of an IoU-constrained pair, normalised; see sample_pair_windows.

  iou_threshold 0 accepts the first pair drawn (BYOL's unconstrained views).
  """
  w1, w2, fallback = sample_pair_windows(seed, image_hw, iou_threshold, max_pair_tries,
                                         candidates, area_range, aspect_ratio_range)
  return _normalised(w1, image_hw), _normalised(w2, image_hw), fallback


def decode_rgb(encoded):
  """Full decode of any format TF reads to uint8 RGB `[H, W, 3]` (gray, RGBA, 16-bit included)."""
  return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)


def encoded_hw(encoded):
  """int32 (height, width) of an encoded image: from the JPEG header, else by decoding."""
  return tf.cond(tf.io.is_jpeg(encoded),
                 lambda: tf.io.extract_jpeg_shape(encoded)[:2],
                 lambda: tf.shape(decode_rgb(encoded))[:2])


def decode_window(encoded, window):
  """uint8 RGB pixels of a whole-pixel window `[y1, x1, y2, x2]` of a JPEG, decoding only it.

  Equals the full decode cropped, except on the window's outer pixel ring of chroma-subsampled
  (4:2:0) JPEGs, where chroma upsampling lacks the neighbours outside the window.
  """
  y1, x1, y2, x2 = tf.unstack(tf.cast(window, tf.int32), 4)
  return tf.io.decode_and_crop_jpeg(encoded, tf.stack([y1, x1, y2 - y1, x2 - x1]), channels=3)


def crop_and_resize_view(pixels, window, image_size):
  """The whole-pixel `window` of uint8 `pixels`, resized bilinear to float32 [S, S, 3] in [0, 1].

  Not antialiased, as BYOL's and SimCLR's TF pipelines: antialiasing costs 2-4x per view.
  """
  y1, x1, y2, x2 = tf.unstack(tf.cast(window, tf.int32), 4)
  view = tf.image.resize(pixels[y1:y2, x1:x2], [image_size, image_size], 'bilinear')
  return tf.clip_by_value(view / 255.0, 0.0, 1.0)


@tf.autograph.experimental.do_not_convert  # plain TF ops: skipping autograph halves tracing
def make_views(encoded, seed, *, image_size, iou_threshold, max_pair_tries, pair_candidates,
               area_range, aspect_ratio_range, decode_and_crop=True):
  """Two unaugmented views of one encoded image and their boxes.

  JPEGs (with decode_and_crop) decode only the union of the two windows; other formats decode
  in full, once. Returns a dict: `view1`, `view2` float32 [S, S, 3] in [0, 1]; `box1`, `box2`
  float32 [4] normalised to the original image; `fallback` bool (no pair met the threshold).
  """
  def header_only():  # the JPEG path decodes once the windows are known; empty pixels till then
    return tf.io.extract_jpeg_shape(encoded)[:2], tf.zeros([0, 0, 3], tf.uint8)

  def full_decode():
    pixels = decode_rgb(encoded)
    return tf.shape(pixels)[:2], pixels

  use_crop = tf.io.is_jpeg(encoded) if decode_and_crop else tf.constant(False)
  hw, pixels = tf.cond(use_crop, header_only, full_decode)
  w1, w2, fallback = sample_pair_windows(seed, hw, iou_threshold, max_pair_tries,
                                         pair_candidates, area_range, aspect_ratio_range)
  region = tf.where(use_crop, boxes.union_box(w1, w2), tf.zeros([4]))
  pixels = tf.cond(use_crop, lambda: decode_window(encoded, region), lambda: pixels)
  origin = tf.tile(region[:2], [2])
  return {
      'view1': crop_and_resize_view(pixels, w1 - origin, image_size),
      'view2': crop_and_resize_view(pixels, w2 - origin, image_size),
      'box1': _normalised(w1, hw),
      'box2': _normalised(w2, hw),
      'fallback': fallback,
  }
