"""Box maths on `[..., 4]` float boxes `[y1, x1, y2, x2]` (the `tf.image.crop_and_resize` order).

Every function broadcasts over leading dimensions and works on normalised or pixel boxes alike.
IoU is invariant to scaling each axis, so the IoU of boxes normalised to a non-square image equals
their IoU in that image's pixels.
"""

import tensorflow as tf


def _unstack(b):
  return tf.unstack(tf.convert_to_tensor(b, tf.float32), 4, axis=-1)


def height_width(b):
  """Returns (height, width) of boxes, each `[...]`; negative for inverted boxes."""
  y1, x1, y2, x2 = _unstack(b)
  return y2 - y1, x2 - x1


def area(b):
  """Area of boxes `[..., 4]` -> `[...]`; inverted boxes count as empty."""
  h, w = height_width(b)
  return tf.maximum(h, 0.0) * tf.maximum(w, 0.0)


def intersection(a, b):
  """The overlap box of `a` and `b`.

  Disjoint boxes give a zero-area box: along an axis without overlap the far edge is pulled back
  onto the near edge (y2 = y1 or x2 = x1), so the result stays a valid box of area 0.
  """
  ay1, ax1, ay2, ax2 = _unstack(a)
  by1, bx1, by2, bx2 = _unstack(b)
  y1, x1 = tf.maximum(ay1, by1), tf.maximum(ax1, bx1)
  y2, x2 = tf.minimum(ay2, by2), tf.minimum(ax2, bx2)
  return tf.stack([y1, x1, tf.maximum(y2, y1), tf.maximum(x2, x1)], axis=-1)


def union_box(a, b):
  """Smallest box holding both `a` and `b`."""
  ay1, ax1, ay2, ax2 = _unstack(a)
  by1, bx1, by2, bx2 = _unstack(b)
  return tf.stack([tf.minimum(ay1, by1), tf.minimum(ax1, bx1),
                   tf.maximum(ay2, by2), tf.maximum(ax2, bx2)], axis=-1)


def iou(a, b):
  """Intersection over union `[...]`; 0 where both boxes are empty."""
  overlap = area(intersection(a, b))
  union = area(a) + area(b) - overlap
  return tf.math.divide_no_nan(overlap, union)


def relative_to(inner, outer):
  """`inner`'s coordinates as fractions of `outer` (a box of the image becomes a box of the view).

  `outer` must have positive height and width.
  """
  oy1, ox1, oy2, ox2 = _unstack(outer)
  origin = tf.stack([oy1, ox1, oy1, ox1], axis=-1)
  extent = tf.stack([oy2 - oy1, ox2 - ox1, oy2 - oy1, ox2 - ox1], axis=-1)
  return (tf.convert_to_tensor(inner, tf.float32) - origin) / extent


def scale(b, hw):
  """Multiplies `[y1, x1, y2, x2]` by `[h, w, h, w]`: normalised <-> pixel boxes (with 1 / hw)."""
  h, w = tf.unstack(tf.cast(hw, tf.float32), 2, axis=-1)
  return tf.convert_to_tensor(b, tf.float32) * tf.stack([h, w, h, w], axis=-1)
