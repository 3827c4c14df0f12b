"""Intra-image K-means against a numpy Lloyd from the same farthest-point initialisation."""

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.models import kmeans as kmeans_lib


def _np_kmeans(x, k, iterations, metric):
  """One image x [N, C]: returns (per-pixel centroid [N, C], assignment [N])."""
  x = x.astype(np.float64)
  if metric == 'cosine':
    x = x / np.linalg.norm(x, axis=1, keepdims=True)

  def dist(c):
    if metric == 'cosine':
      return -x @ (c / np.linalg.norm(c))
    return ((x - c) ** 2).sum(axis=1)

  chosen = [x[np.argmin(dist(x.mean(axis=0)))]]  # the pixel nearest the mean
  nearest = dist(chosen[0])
  for _ in range(k - 1):
    chosen.append(x[np.argmax(nearest)])
    nearest = np.minimum(nearest, dist(chosen[-1]))
  centroids = np.array(chosen)
  for _ in range(iterations):
    assignment = np.argmin(np.stack([dist(c) for c in centroids], axis=1), axis=1)
    for c in range(k):
      if np.any(assignment == c):  # an empty cluster keeps its centroid
        centroids[c] = x[assignment == c].mean(axis=0)
  if metric == 'cosine':
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
  return centroids[assignment], assignment


def _check(x, k, iterations, metric):
  centroids, assignment = kmeans_lib.kmeans(tf.constant(x), k, iterations, metric)
  assert centroids.dtype == tf.float32 and assignment.dtype == tf.int32
  assert centroids.shape == x.shape and assignment.shape == x.shape[:3]
  batch, height, width, channels = x.shape
  for b in range(batch):  # each image on its own
    want_c, want_a = _np_kmeans(x[b].reshape(-1, channels), k, iterations, metric)
    np.testing.assert_array_equal(assignment[b].numpy().reshape(-1), want_a)
    np.testing.assert_allclose(centroids[b].numpy().reshape(-1, channels), want_c, atol=1e-5)
  return centroids.numpy(), assignment.numpy()


@pytest.mark.parametrize('metric', ['cosine', 'euclidean'])
@pytest.mark.parametrize('k,iterations', [(3, 10), (5, 3)])
def test_kmeans_matches_numpy(metric, k, iterations):
  rng = np.random.default_rng(k * 10 + iterations)
  # Per-image offsets make the batch heterogeneous: clustering across it would differ.
  x = rng.normal(size=(3, 7, 6, 8)) + 3 * rng.normal(size=(3, 1, 1, 8))
  centroids, _ = _check(x.astype(np.float32), k, iterations, metric)
  if metric == 'cosine':
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize('metric', ['cosine', 'euclidean'])
def test_kmeans_empty_clusters(metric):
  rng = np.random.default_rng(5)
  # Image 0: three distinct values for K = 5; image 1: K > H*W = 4. Surplus clusters stay empty.
  values = rng.normal(size=(3, 4))
  image0 = values[rng.integers(0, 3, size=(2, 2))]
  image0[0, 0], image0[0, 1], image0[1, 0] = values
  image1 = rng.normal(size=(2, 2, 4))
  x = np.stack([image0, image1]).astype(np.float32)
  centroids, assignment = _check(x, 5, 4, metric)
  assert np.all(np.isfinite(centroids))
  assert set(assignment[0].reshape(-1)) == {0, 1, 2}
  assert set(assignment[1].reshape(-1)) == {0, 1, 2, 3}


def test_lloyd_step_keeps_an_empty_clusters_centroid():
  # Farthest-point seeds own their own pixel, so emptiness needs hand-set centroids here.
  x = tf.constant([[[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 1.0]]])
  centroids = tf.constant([[[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]]])
  assignment, moved = kmeans_lib._lloyd_step(x, centroids, 'euclidean')
  np.testing.assert_array_equal(assignment.numpy(), [[0, 0, 1, 1]])
  np.testing.assert_allclose(moved.numpy(), [[[0.5, 0.0], [10.5, 0.5], [50.0, 50.0]]])


def test_kmeans_stops_gradient_and_runs_in_graph_on_bfloat16():
  x = tf.random.stateless_normal([2, 5, 5, 4], seed=[1, 2])
  with tf.GradientTape() as tape:
    tape.watch(x)
    centroids, _ = kmeans_lib.kmeans(x, 3, 2)
  assert tape.gradient(tf.reduce_sum(centroids), x) is None
  run = tf.function(lambda v: kmeans_lib.kmeans(v, 3, 2),
                    input_signature=[tf.TensorSpec([None, None, None, 4], tf.bfloat16)])
  centroids16, assignment16 = run(tf.cast(x, tf.bfloat16))
  assert centroids16.dtype == tf.float32 and assignment16.shape == (2, 5, 5)


def test_kmeans_rejects_unknown_metric():
  with pytest.raises(ValueError, match='metric'):
    kmeans_lib.kmeans(tf.zeros([1, 2, 2, 3]), 2, 1, metric='manhattan')


def test_dense_cluster_similarity_matches_numpy():
  rng = np.random.default_rng(6)
  q = rng.normal(size=(2, 4, 3, 5)).astype(np.float32)
  x = rng.normal(size=(2, 4, 3, 5)).astype(np.float32)
  assignment = rng.integers(0, 3, size=(2, 4, 3)).astype(np.int32)
  got = kmeans_lib.dense_cluster_similarity(q, x, assignment).numpy()
  unit = lambda v: v / np.linalg.norm(v)
  for b in range(2):
    for i in range(4):
      for j in range(3):
        members = [unit(x[b, i2, j2]) for i2 in range(4) for j2 in range(3)
                   if assignment[b, i2, j2] == assignment[b, i, j]]
        want = np.mean([unit(q[b, i, j]) @ m for m in members])
        np.testing.assert_allclose(got[b, i, j], want, atol=1e-5)
