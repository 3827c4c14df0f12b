"""Box maths against numpy on random, disjoint, nested and broadcast boxes."""

import numpy as np
import pytest

from multisiam_tf.data import boxes


def random_boxes(rng, n):
  y = np.sort(rng.uniform(0, 1, (n, 2)), axis=1)
  x = np.sort(rng.uniform(0, 1, (n, 2)), axis=1)
  return np.stack([y[:, 0], x[:, 0], y[:, 1], x[:, 1]], axis=1).astype(np.float32)


def box_cases(rng, n=500):
  """Random pairs plus, for a third each, b disjoint from a and b nested inside a."""
  a, b = random_boxes(rng, n), random_boxes(rng, n)
  h, w = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
  disjoint = a + np.stack([h, w * 0, h, w * 0], 1) * rng.uniform(1.0, 2.0, (n, 1))
  t = np.sort(rng.uniform(0, 1, (n, 4)).reshape(n, 2, 2), axis=2)
  nested = np.stack([a[:, 0] + t[:, 0, 0] * h, a[:, 1] + t[:, 1, 0] * w,
                     a[:, 0] + t[:, 0, 1] * h, a[:, 1] + t[:, 1, 1] * w], 1)
  third = n // 3
  b[:third] = disjoint[:third]
  b[third:2 * third] = nested[third:2 * third]
  return a, b.astype(np.float32)


def np_area(b):
  return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def np_overlap(a, b):
  h = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
  w = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
  return np.maximum(h, 0) * np.maximum(w, 0)


def np_iou(a, b):
  inter = np_overlap(a, b)
  return inter / (np_area(a) + np_area(b) - inter)


def test_iou_matches_numpy():
  a, b = box_cases(np.random.default_rng(0))
  got = boxes.iou(a, b).numpy()
  np.testing.assert_allclose(got, np_iou(a.astype(np.float64), b.astype(np.float64)),
                             rtol=1e-5, atol=1e-6)
  n = len(a) // 3
  assert np.all(got[:n] == 0)  # disjoint
  np.testing.assert_allclose(got[n:2 * n], np_area(b[n:2 * n]) / np_area(a[n:2 * n]), rtol=1e-4)


def test_iou_of_identical_boxes_is_one_and_empty_boxes_zero():
  a = random_boxes(np.random.default_rng(1), 50)
  np.testing.assert_allclose(boxes.iou(a, a).numpy(), 1.0, rtol=1e-6)
  empty = np.zeros([3, 4], np.float32)
  np.testing.assert_array_equal(boxes.iou(empty, empty).numpy(), 0.0)


def test_intersection_matches_numpy_and_disjoint_boxes_collapse_to_zero_area():
  a, b = box_cases(np.random.default_rng(2))
  got = boxes.intersection(a, b).numpy()
  np.testing.assert_allclose(boxes.area(got).numpy(), np_overlap(a, b), atol=1e-6)
  assert np.all(got[:, 2] >= got[:, 0]) and np.all(got[:, 3] >= got[:, 1])
  overlapping = np_overlap(a, b) > 0
  expected = np.concatenate([np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])], 1)
  np.testing.assert_array_equal(got[overlapping], expected[overlapping])
  n = len(a) // 3
  np.testing.assert_array_equal(got[n:2 * n], b[n:2 * n])  # nested: the inner box itself


def test_union_box_holds_both():
  a, b = box_cases(np.random.default_rng(3))
  got = boxes.union_box(a, b).numpy()
  expected = np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], 1)
  np.testing.assert_array_equal(got, expected)


def test_relative_to_matches_numpy_and_round_trips():
  rng = np.random.default_rng(4)
  outer, inner = box_cases(rng)
  got = boxes.relative_to(inner, outer).numpy()
  h = (outer[:, 2] - outer[:, 0])[:, None]
  w = (outer[:, 3] - outer[:, 1])[:, None]
  expected = (inner - outer[:, [0, 1, 0, 1]]) / np.concatenate([h, w, h, w], 1)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
  n = len(inner) // 3
  nested = got[n:2 * n]
  assert np.all(nested >= -1e-5) and np.all(nested <= 1 + 1e-5)
  back = outer[:, [0, 1, 0, 1]] + got * np.concatenate([h, w, h, w], 1)
  np.testing.assert_allclose(back, inner, atol=1e-5)


def test_broadcasting_over_leading_dims():
  rng = np.random.default_rng(5)
  a = random_boxes(rng, 6).reshape(2, 3, 1, 4)
  b = random_boxes(rng, 5).reshape(1, 1, 5, 4)
  got = boxes.iou(a, b).numpy()
  assert got.shape == (2, 3, 5)
  np.testing.assert_allclose(got, np_iou(a, b), rtol=1e-5, atol=1e-6)
  assert boxes.relative_to(a, b).shape == (2, 3, 5, 4)
  assert boxes.intersection(a, b).shape == (2, 3, 5, 4)


@pytest.mark.parametrize('hw', [(1280, 1920), (37, 501)])
def test_iou_is_the_same_in_pixels_of_a_non_square_image(hw):
  a, b = box_cases(np.random.default_rng(6))
  pixels = boxes.iou(boxes.scale(a, hw), boxes.scale(b, hw)).numpy()
  np.testing.assert_allclose(pixels, boxes.iou(a, b).numpy(), rtol=1e-3, atol=1e-5)
  np.testing.assert_allclose(boxes.scale(a, hw).numpy(), a * np.array(hw * 2), rtol=1e-6)
