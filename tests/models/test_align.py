"""Alignment (eqs. 3-7) against plain numpy references with explicit loops."""

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.models import align


def _np_bilinear(fm, y, x):
  """torchvision's roi_align bilinear_interpolate: clamp within one cell outside, else zero."""
  height, width = fm.shape[:2]
  if y < -1.0 or y > height or x < -1.0 or x > width:
    return np.zeros(fm.shape[2])
  y, x = max(y, 0.0), max(x, 0.0)
  y0, x0 = int(np.floor(y)), int(np.floor(x))
  if y0 >= height - 1:
    y0 = y1 = height - 1
    y = float(y0)
  else:
    y1 = y0 + 1
  if x0 >= width - 1:
    x0 = x1 = width - 1
    x = float(x0)
  else:
    x1 = x0 + 1
  ly, lx = y - y0, x - x0
  return ((1 - ly) * (1 - lx) * fm[y0, x0] + (1 - ly) * lx * fm[y0, x1]
          + ly * (1 - lx) * fm[y1, x0] + ly * lx * fm[y1, x1])


def _np_roi_align(fm, box, out_h, out_w):
  """RoIAlign aligned=True, sampling ratio 2, box relative to the map's view (METHOD.md §3)."""
  height, width = fm.shape[:2]
  y_start, x_start = box[0] * height - 0.5, box[1] * width - 0.5
  bin_h = (box[2] - box[0]) * height / out_h
  bin_w = (box[3] - box[1]) * width / out_w
  out = np.zeros((out_h, out_w, fm.shape[2]))
  for p in range(out_h):
    for q in range(out_w):
      for sy in range(2):
        for sx in range(2):
          y = y_start + p * bin_h + (sy + 0.5) * bin_h / 2
          x = x_start + q * bin_w + (sx + 0.5) * bin_w / 2
          out[p, q] += _np_bilinear(fm, y, x) / 4
  return out


def _random_view_boxes(rng, n, height, width):
  """Boxes relative to the view, some beyond its edges by less than one cell."""
  def side(cells):
    lo = rng.uniform(-0.9 / cells, 0.6, n)
    hi = np.minimum(lo + rng.uniform(0.15, 1.2, n), 1 + 0.9 / cells)
    return lo, hi
  y1, y2 = side(height)
  x1, x2 = side(width)
  boxes = np.stack([y1, x1, y2, x2], axis=1)
  boxes[0] = [0.0, 0.0, 1.0, 1.0]  # the whole view, touching every edge
  return boxes.astype(np.float32)


@pytest.mark.parametrize('height,width,out', [(7, 7, 7), (6, 9, (5, 4)), (1, 3, 2)])
def test_roi_align_matches_numpy(height, width, out):
  rng = np.random.default_rng(height * 100 + width)
  maps = rng.normal(size=(6, height, width, 3)).astype(np.float32)
  boxes = _random_view_boxes(rng, 6, height, width)
  out_h, out_w = (out, out) if isinstance(out, int) else out
  got = align.roi_align(tf.constant(maps), tf.constant(boxes), out).numpy()
  want = np.stack([_np_roi_align(m, b, out_h, out_w) for m, b in zip(maps, boxes)])
  assert got.shape == (6, out_h, out_w, 3)
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_roi_align_graph_bfloat16_and_gradient():
  rng = np.random.default_rng(1)
  maps = tf.constant(rng.normal(size=(2, 7, 7, 4)), tf.bfloat16)
  boxes = tf.constant(_random_view_boxes(rng, 2, 7, 7))
  pool = tf.function(lambda m, b: align.roi_align(m, b, 7), input_signature=[
      tf.TensorSpec([None, None, None, 4], tf.bfloat16), tf.TensorSpec([None, 4], tf.float32)])
  got = pool(maps, boxes)
  assert got.dtype == tf.bfloat16 and got.shape == (2, 7, 7, 4)
  want = np.stack([_np_roi_align(m, b, 7, 7) for m, b in
                   zip(tf.cast(maps, tf.float32).numpy(), boxes.numpy())])
  np.testing.assert_allclose(tf.cast(got, tf.float32).numpy(), want, atol=0.05)
  maps32 = tf.cast(maps, tf.float32)
  inside = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.2, 0.1, 0.9, 0.7]])
  with tf.GradientTape() as tape:
    tape.watch(maps32)
    total = tf.reduce_sum(align.roi_align(maps32, inside, 7))
  grad = tape.gradient(total, maps32)  # every sample's bilinear weights sum to 1
  np.testing.assert_allclose(tf.reduce_sum(grad, axis=[1, 2, 3]).numpy(), [49 * 4] * 2, rtol=1e-5)


def test_flip_back():
  rng = np.random.default_rng(2)
  maps = rng.normal(size=(4, 3, 5, 2)).astype(np.float32)
  flips = np.array([True, False, True, False])
  got = align.flip_back(tf.constant(maps), tf.constant(flips)).numpy()
  for b in range(4):
    np.testing.assert_array_equal(got[b], maps[b, :, ::-1] if flips[b] else maps[b])


def _np_cell_centres(box, height, width):
  """coord(G_ij) in the image, explicit loops: y = y1 + (i + 0.5) h / H (eq. 5)."""
  out = np.zeros((height, width, 2))
  for i in range(height):
    for j in range(width):
      out[i, j] = (box[0] + (i + 0.5) * (box[2] - box[0]) / height,
                   box[1] + (j + 0.5) * (box[3] - box[1]) / width)
  return out


def _random_image_boxes(rng, n):
  lo = rng.uniform(0, 0.5, (n, 2))
  hi = lo + rng.uniform(0.2, 0.5, (n, 2))
  return np.concatenate([lo, hi], axis=1).astype(np.float32)


@pytest.mark.parametrize('normalize', [True, False])
def test_offset_map_with_flips(normalize):
  rng = np.random.default_rng(3)
  height, width = 5, 7
  box_online, box_target = _random_image_boxes(rng, 4), _random_image_boxes(rng, 4)
  flips_online = np.array([True, False, True, False])
  flips_target = np.array([True, True, False, False])

  def seen_coords(boxes, flips):
    # What a flipped view's map shows at (i, j) is the image point of cell (i, W - 1 - j).
    maps = np.stack([_np_cell_centres(b, height, width) for b in boxes])
    maps[flips] = maps[flips][:, :, ::-1]
    return align.flip_back(tf.constant(maps, tf.float32), tf.constant(flips)).numpy()

  coord_online = seen_coords(box_online, flips_online)
  coord_target = seen_coords(box_target, flips_target)
  want = coord_target - coord_online
  if normalize:
    span = coord_online[:, -1, -1] - coord_online[:, 0, 0]  # coord(G_HW) - coord(G_11)
    want = want / span[:, None, None, :]
  got = align.offset_map(tf.constant(box_online), tf.constant(box_target), (height, width),
                         normalize=normalize)
  assert got.dtype == tf.float32 and got.shape == (4, height, width, 2)
  np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_offset_map_same_box_is_zero_and_shift_is_constant():
  box = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
  shifted = box + np.array([0.1, -0.05, 0.1, -0.05], np.float32)
  np.testing.assert_allclose(align.offset_map(box, box, 7).numpy(), 0.0, atol=1e-7)
  got = align.offset_map(box, shifted, 7).numpy()
  # A shift by a quarter of the view is 0.25 / (6/7) of the centre-to-centre extent.
  np.testing.assert_allclose(got[..., 0], 0.1 / (0.4 * 6 / 7), rtol=1e-5)
  np.testing.assert_allclose(got[..., 1], -0.05 / (0.4 * 6 / 7), rtol=1e-5)


def test_intersection_in_views():
  rng = np.random.default_rng(4)
  box1, box2 = _random_image_boxes(rng, 8), _random_image_boxes(rng, 8)
  box2[0] = [0.9, 0.9, 0.95, 0.95]  # disjoint from box1[0]
  box1[0] = [0.1, 0.1, 0.5, 0.5]
  rel1, rel2 = (r.numpy() for r in align.intersection_in_views(box1, box2))
  for b in range(8):
    top = np.maximum(box1[b, :2], box2[b, :2])
    bottom = np.maximum(np.minimum(box1[b, 2:], box2[b, 2:]), top)
    for box, rel in ((box1[b], rel1[b]), (box2[b], rel2[b])):
      extent = box[2:] - box[:2]
      np.testing.assert_allclose(rel[:2], (top - box[:2]) / extent, atol=1e-5)
      np.testing.assert_allclose(rel[2:], (bottom - box[:2]) / extent, atol=1e-5)
  assert np.all(rel1[:, 2:] >= rel1[:, :2])
  np.testing.assert_allclose(rel1[0, 2:] - rel1[0, :2], 0.0)


def test_roi_alignment_pools_the_same_image_points():
  # A map linear in image coordinates: RoIAlign of both views over their overlap agrees (eq. 3-4).
  size = 16
  box1 = np.array([[0.0, 0.1, 0.7, 0.8]], np.float32)
  box2 = np.array([[0.2, 0.0, 0.9, 0.75]], np.float32)

  def linear_map(box):
    coords = _np_cell_centres(box[0], size, size)
    return tf.constant((coords @ np.array([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]]))[None],
                       tf.float32)

  rel1, rel2 = align.intersection_in_views(box1, box2)
  r1 = align.roi_align(linear_map(box1), rel1, 4)  # >= 2 cells per sample: no edge clamping
  r2 = align.roi_align(linear_map(box2), rel2, 4)
  np.testing.assert_allclose(r1.numpy(), r2.numpy(), atol=1e-5)
