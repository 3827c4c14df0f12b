"""Feature alignment of the two views' projected maps (paper §3.2, eqs. 3-7; METHOD.md §3).

Boxes are `[y1, x1, y2, x2]`: in [0, 1] of the original image for `offset_map` and
`intersection_in_views`, in [0, 1] of each map's own view for `roi_align`. All functions are
batched over the leading axis and graph-safe.
"""

import tensorflow as tf

from multisiam_tf.data import boxes as boxes_lib


def _hw(size):
  """(H, W) from a pair or a single side."""
  if isinstance(size, (tuple, list)):
    return tuple(size)
  return size, size


def flip_back(maps, flips):
  """Flips maps [B, H, W, C] horizontally where flips [B] is True: back to the box geometry."""
  flips = tf.convert_to_tensor(flips, tf.bool)
  return tf.where(flips[:, None, None, None], tf.reverse(maps, axis=[2]), maps)


def intersection_in_views(box1, box2):
  """The overlap of two image boxes [B, 4] expressed relative to each view: (B, B') of eqs. 3-4.

  Without overlap (possible only when the IoU threshold is 0) `boxes.intersection` returns a
  zero-extent box, so RoIAlign pools one line or point of each map instead of failing.
  """
  overlap = boxes_lib.intersection(box1, box2)
  return boxes_lib.relative_to(overlap, box1), boxes_lib.relative_to(overlap, box2)


def roi_align(maps, boxes, size):
  """RoIAlign (aligned=True, sampling ratio 2) of each map over its own box (eqs. 3-4).

  A box [y1, x1, y2, x2] in [0, 1] of the view covers feature coordinates y1*H - 0.5 ..
  y2*H - 0.5 (cell centres at integers); each of the size x size output bins averages 2 x 2
  bilinear samples at bin-centred points. As torchvision's roi_align, a sample up to one cell
  outside the map takes the nearest edge value and one further out contributes zero.

  Args:
    maps: [B, H, W, C] feature maps; any float dtype (computed in float32).
    boxes: [B, 4] float boxes, box b relative to the view of maps[b].
    size: output side (int) or (height, width).

  Returns:
    [B, size_h, size_w, C] in the dtype of `maps`.
  """
  out_h, out_w = _hw(size)
  dtype = maps.dtype
  maps = tf.cast(maps, tf.float32)  # crop_and_resize rejects bfloat16
  boxes = tf.cast(boxes, tf.float32)
  shape = tf.shape(maps)
  height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
  # Replicating the edge once makes crop_and_resize clamp samples within one cell outside.
  padded = tf.pad(maps, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='SYMMETRIC')
  y1, x1, y2, x2 = tf.unstack(boxes, axis=1)

  def sample_span(lo, hi, cells, bins):
    # First and last of the 2*bins equally spaced samples, in padded-map coordinates.
    step = (hi - lo) * cells / tf.cast(2 * bins, tf.float32)
    first = lo * cells - 0.5 + step / 2 + 1
    last = hi * cells - 0.5 - step / 2 + 1
    return first / (cells + 1), last / (cells + 1)  # crop_and_resize: 0..1 spans 0..(cells+2)-1

  ya, yb = sample_span(y1, y2, height, out_h)
  xa, xb = sample_span(x1, x2, width, out_w)
  samples = tf.image.crop_and_resize(
      padded, tf.stack([ya, xa, yb, xb], axis=1), tf.range(shape[0]), [2 * out_h, 2 * out_w])
  pooled = tf.nn.avg_pool2d(samples, ksize=2, strides=2, padding='VALID')
  return tf.cast(pooled, dtype)


def offset_map(box_online, box_target, size, normalize=True):
  """Coordinate offset map DeltaC [B, H, W, 2] as (dy, dx) from G to G' (eq. 5).

  coord(G_ij) is the centre of cell (i, j) in the original image, y = y1 + (i + 0.5) * h / H.
  DeltaC_ij = (coord(G'_ij) - coord(G_ij)) / (coord(G_HW) - coord(G_11)), the denominator per
  axis from the online view: (H - 1) * h / H. An axis of one cell has no extent between its first
  and last centre, so it falls back to the view's extent h. normalize=False ("offset nonorm",
  Table 2b) divides by the image size instead, which is 1 for normalised boxes.

  Args:
    box_online: [B, 4] box of the online view v in [0, 1] of the image, unflipped.
    box_target: [B, 4] box of the target view v', same convention.
    size: (H, W) of the maps, or an int.
    normalize: divide by the online view's cell-centre extent (True) or the image (False).

  Returns:
    float32 [B, H, W, 2].
  """
  height, width = _hw(size)
  box_online = tf.cast(box_online, tf.float32)
  box_target = tf.cast(box_target, tf.float32)
  cells = tf.cast(tf.stack([height, width]), tf.float32)  # (H, W)
  rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing='ij')
  index = tf.cast(tf.stack([rows, cols], axis=-1), tf.float32) + 0.5  # [H, W, 2] cell centres

  def coord(box):
    extent = box[:, 2:] - box[:, :2]
    return box[:, None, None, :2] + index[None] * (extent / cells)[:, None, None, :]

  delta = coord(box_target) - coord(box_online)  # eq. 5 numerator
  if not normalize:
    return delta
  extent_online = box_online[:, 2:] - box_online[:, :2]
  span = extent_online * tf.maximum(cells - 1, 1) / cells  # coord(G_HW) - coord(G_11)
  return delta / span[:, None, None, :]
