"""IoU-constrained view pairs and decoding only the pixels they need (METHOD.md section 1).

A view is a RandomResizedCrop window of the original image, on whole pixels, so that decoding
the window alone and cropping it from the full decode give the same pixels. Boxes leave this
module as `[y1, x1, y2, x2]` normalised to the original image; windows are the same in pixels.
A JPEG pair decodes only the union of its windows, scaled by 1/2, 1/4 or 1/8 in the DCT domain
when both windows stay at least image_size pixels a side (libjpeg's reduced IDCT costs a
fraction of the full one; the views are then sampled at the points a full-resolution resize
samples, to 1e-3 scaled pixels, so boxes stay exact). Every function is stateless (`seed` is a `[2]` int
tensor) and graph-safe inside `tf.data`.
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


DECODE_RATIOS = (1, 2, 4, 8)  # the DCT scalings libjpeg offers: 1/1, 1/2, 1/4, 1/8


def decode_window(encoded, window, ratio=1):
  """uint8 RGB pixels of a whole-pixel window `[y1, x1, y2, x2]` of a JPEG, decoding only it.

  Equals the full decode cropped, except on the window's outer pixel ring of chroma-subsampled
  (4:2:0, 4:2:2) JPEGs, where chroma upsampling lacks the neighbours outside the window. With
  `ratio` (a Python int in DECODE_RATIOS) the window is in the coordinates of the image scaled
  by 1 / ratio in the DCT domain, whose size is ceil(H / ratio) x ceil(W / ratio); there 4:2:0
  chroma is scaled in the DCT, not upsampled, and has no such ring (4:2:2 keeps it at 2 and 4).
  """
  y1, x1, y2, x2 = tf.unstack(tf.cast(window, tf.int32), 4)
  return tf.io.decode_and_crop_jpeg(encoded, tf.stack([y1, x1, y2 - y1, x2 - x1]), channels=3,
                                    ratio=ratio)


def decode_ratio(windows, image_size, max_ratio=DECODE_RATIOS[-1]):
  """The largest DCT scaling r in DECODE_RATIOS (<= max_ratio) that keeps every window's sides,
  divided by r, at least `image_size`: each view is then still resized down, never up.

  windows: float32 `[..., 4]` pixel windows. Returns an int32 scalar.
  """
  heights, widths = boxes.height_width(windows)
  side = tf.reduce_min(tf.minimum(heights, widths))
  ratios = [r for r in DECODE_RATIOS if r <= max_ratio]
  ratio = tf.constant(1)
  for r in ratios[1:]:
    ratio = tf.where(side >= r * image_size, r, ratio)
  return ratio


def scaled_region(window, image_hw, ratio):
  """A whole-pixel window of the 1 / ratio scaled image covering the pixel `window`.

  Scaled pixel k covers original pixels [k * ratio, (k + 1) * ratio); the scaled image has
  ceil(H / ratio) x ceil(W / ratio) pixels. At ratio 1 this is `window` itself. At ratio > 1 its
  left edge moves left onto a multiple of 32 / ratio scaled pixels, which every iMCU width
  (8 / ratio times a horizontal sampling factor of 1, 2 or 4) divides: libjpeg then crops from
  where asked, and TF skips re-aligning (a memmove of) every decoded row. Returns float32 `[4]`.
  """
  r = tf.cast(ratio, tf.float32)
  scaled_hw = tf.math.ceil(tf.cast(image_hw, tf.float32) / r)
  start = tf.floor(window[:2] / r)
  align = tf.where(ratio > 1, 32.0 / r, 1.0)
  start = tf.stack([start[0], tf.floor(start[1] / align) * align])
  end = tf.minimum(tf.math.ceil(window[2:] / r), scaled_hw)
  return tf.concat([start, end], 0)


def scaled_sample_boxes(windows, region, ratio, image_size, flips=None):
  """`tf.image.crop_and_resize` boxes that sample `windows` (original pixels) from `region`.

  The samples are those of a half-pixel-centred bilinear resize of each window to
  image_size x image_size in original pixels, (i + 0.5) * h / S - 0.5 from the window's top,
  mapped to the 1 / ratio scaled image (original pixel p -> (p + 0.5) / ratio - 0.5) and made
  relative to `region`, the decoded part of that image. While window side / ratio >= S, every
  sample lies inside the region (so crop_and_resize never extrapolates); the last sample is kept
  1e-3 scaled pixels inside to absorb float32 rounding (so where a window side is r * S, or a
  few pixels more, it moves by up to 1e-3 scaled pixels). Where `flips` ([n] bool) is True the
  box's x1 and x2 are swapped: crop_and_resize then samples the same points right to left.

  windows: float32 `[n, 4]`; region: float32 `[4]` scaled pixel window. Returns `[n, 4]`.
  """
  r = tf.cast(ratio, tf.float32)
  s = float(image_size)
  y1, x1, y2, x2 = tf.unstack(windows, 4, axis=-1)
  extent = region[2:] - region[:2] - 1.0  # (Hd - 1, Wd - 1) of the decoded region

  def axis(start, end, origin, span):
    step = (end - start) / s
    first = (start + 0.5 * step) / r - 0.5 - origin
    last = (end - 0.5 * step) / r - 0.5 - origin
    span = tf.maximum(span, 1.0)
    return (tf.maximum(first, 0.0) / span,
            tf.minimum(last, span - 1e-3) / span)

  top, bottom = axis(y1, y2, region[0], extent[0])
  left, right = axis(x1, x2, region[1], extent[1])
  if flips is not None:
    left, right = tf.where(flips, right, left), tf.where(flips, left, right)
  return tf.stack([top, left, bottom, right], axis=-1)


def crop_and_resize_view(pixels, window, image_size, flip=False):
  """The whole-pixel `window` of uint8 `pixels`, resized bilinear to float32 [S, S, 3] in [0, 1],
  mirrored left-right where `flip`.

  Not antialiased, as BYOL's and SimCLR's TF pipelines: antialiasing costs 2-4x per view.
  """
  y1, x1, y2, x2 = tf.unstack(tf.cast(window, tf.int32), 4)
  view = tf.image.resize(pixels[y1:y2, x1:x2], [image_size, image_size], 'bilinear')
  view = tf.clip_by_value(view / 255.0, 0.0, 1.0)
  return tf.cond(flip, lambda: tf.reverse(view, [1]), lambda: view)


def resize_scaled_views(pixels, windows, region, ratio, image_size, flips=None):
  """Views `[n, S, S, 3]` float32 in [0, 1] of pixel `windows` from a DCT-scaled decode.

  `pixels` is `region` (see scaled_region) of the image decoded at 1 / ratio; the views are
  sampled where a bilinear resize of the full-resolution window samples (scaled_sample_boxes),
  mirrored left-right where `flips`.
  """
  sample_boxes = scaled_sample_boxes(windows, region, ratio, image_size, flips)
  n = tf.shape(windows)[0]
  views = tf.image.crop_and_resize(pixels[None], sample_boxes, tf.zeros([n], tf.int32),
                                   [image_size, image_size])
  return tf.clip_by_value(views / 255.0, 0.0, 1.0)


@tf.autograph.experimental.do_not_convert  # plain TF ops: skipping autograph halves tracing
def make_views(encoded, seed, *, image_size, iou_threshold, max_pair_tries, pair_candidates,
               area_range, aspect_ratio_range, decode_and_crop=True,
               max_decode_ratio=DECODE_RATIOS[-1], flips=(False, False)):
  """Two unaugmented views of one encoded image and their boxes.

  JPEGs (with decode_and_crop) decode only the union of the two windows, and at the coarsest
  DCT scaling 1 / r (r <= max_decode_ratio) that keeps both windows at least image_size pixels
  on each side (decode_ratio); r = 1 gives exactly the full decode's crop resized. Other
  formats, and decode_and_crop=False, decode in full, once, at r = 1. `flips` (two bools) mirrors
  view 1 / view 2 left-right as it is resized, which costs nothing at r > 1; boxes stay unflipped.

  Returns a dict: `view1`, `view2` float32 [S, S, 3] in [0, 1]; `box1`, `box2` float32 [4]
  normalised to the original image (exact, whatever r); `fallback` bool (no pair met the
  threshold).
  """
  def header_only():  # the JPEG path decodes once the windows are known; empty pixels till then
    return tf.io.extract_jpeg_shape(encoded)[:2], tf.zeros([0, 0, 3], tf.uint8)

  def full_decode():
    pixels = decode_rgb(encoded)
    return tf.shape(pixels)[:2], pixels

  flips = tf.cast(tf.stack(flips), tf.bool)
  use_crop = tf.io.is_jpeg(encoded) if decode_and_crop else tf.constant(False)
  hw, pixels = tf.cond(use_crop, header_only, full_decode)
  w1, w2, fallback = sample_pair_windows(seed, hw, iou_threshold, max_pair_tries,
                                         pair_candidates, area_range, aspect_ratio_range)
  ratios = [r for r in DECODE_RATIOS if r <= max_decode_ratio] if decode_and_crop else [1]
  views = _resized_windows(encoded, pixels, hw, (w1, w2), use_crop, decode_and_crop, ratios,
                           image_size, flips)
  return {
      'view1': views[0],
      'view2': views[1],
      'box1': _normalised(w1, hw),
      'box2': _normalised(w2, hw),
      'fallback': fallback,
  }


def _resized_windows(encoded, pixels, hw, windows, use_crop, decode_and_crop, ratios,
                     image_size, flips):
  """float32 [2, S, S, 3] in [0, 1]: the two `windows` of an image of size `hw`, resized.

  Where `use_crop`, the union of the windows is decoded from `encoded` at 1 / r, r the coarsest
  of `ratios` that keeps both windows at least image_size pixels a side; `pixels` is the full
  decode otherwise.
  """
  w1, w2 = windows
  windows = tf.stack(windows)
  ratio = tf.where(use_crop, decode_ratio(windows, image_size, ratios[-1]), 1)
  region = tf.where(use_crop, scaled_region(boxes.union_box(w1, w2), hw, ratio), tf.zeros([4]))
  if decode_and_crop:
    pixels = tf.cond(
        use_crop,
        lambda: tf.switch_case(tf.argmax(tf.equal(ratio, ratios), output_type=tf.int32),
                               [lambda r=r: decode_window(encoded, region, r) for r in ratios]),
        lambda: pixels)

  def full_resolution():
    origin = tf.tile(region[:2], [2])
    return tf.stack([crop_and_resize_view(pixels, w1 - origin, image_size, flips[0]),
                     crop_and_resize_view(pixels, w2 - origin, image_size, flips[1])])

  if len(ratios) > 1:
    return tf.cond(
        ratio > 1,
        lambda: resize_scaled_views(pixels, windows, region, ratio, image_size, flips),
        full_resolution)
  return full_resolution()

