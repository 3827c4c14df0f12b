"""Intra-image K-means on the aligned target map R' (paper §3.3, eq. 10; METHOD.md §4).

Each image is clustered on its own, never across the batch, without gradients and in float32.
Initialisation is deterministic farthest-point: the first centroid is the pixel nearest the
image's mean feature (a corner pixel could be an outlier); each next one is the pixel farthest
from its nearest chosen centroid (ties: the lowest pixel index). Then `iterations` Lloyd steps,
each assigning every pixel to its nearest centroid and moving every centroid to the mean of its
pixels; an empty cluster keeps its centroid. K > H*W is allowed: once every (distinct) pixel is a
centroid, the surplus ones repeat chosen pixels and lose ties to them, so they stay empty.
"""

import tensorflow as tf

METRICS = ('cosine', 'euclidean')


def _distances(x, centroids, metric):
  """[B, N, K] distances of pixels x [B, N, C] to centroids [B, K, C]."""
  if metric == 'cosine':  # x is L2-normalised; centroids need not be
    return -tf.einsum('bnc,bkc->bnk', x, tf.math.l2_normalize(centroids, axis=-1))
  return tf.reduce_sum(tf.square(x[:, :, None] - centroids[:, None]), axis=-1)


def _farthest_point_init(x, k, metric):
  """[B, k, C] initial centroids: pixels chosen by farthest-point traversal."""
  first = tf.argmin(_distances(x, tf.reduce_mean(x, axis=1, keepdims=True), metric)[..., 0],
                    axis=1)
  chosen = [tf.gather(x, first, batch_dims=1)]
  nearest = _distances(x, chosen[0][:, None], metric)[..., 0]  # [B, N] to the nearest chosen
  for _ in range(k - 1):
    chosen.append(tf.gather(x, tf.argmax(nearest, axis=1), batch_dims=1))
    nearest = tf.minimum(nearest, _distances(x, chosen[-1][:, None], metric)[..., 0])
  return tf.stack(chosen, axis=1)


def _lloyd_step(x, centroids, metric):
  """One Lloyd step on x [B, N, C]: (assignment [B, N], centroids [B, K, C]).

  Each pixel goes to its nearest centroid, each centroid to the mean of its pixels; an empty
  cluster keeps its centroid (a mean of nothing would be NaN).
  """
  assignment = tf.argmin(_distances(x, centroids, metric), axis=-1, output_type=tf.int32)
  members = tf.one_hot(assignment, tf.shape(centroids)[1])  # [B, N, K]
  sums = tf.einsum('bnk,bnc->bkc', members, x)
  counts = tf.reduce_sum(members, axis=1)[..., None]
  return assignment, tf.where(counts > 0, sums / tf.maximum(counts, 1), centroids)


def kmeans(x, k, iterations, metric='cosine'):
  """K-means per image; returns Kmeans(R') per pixel and the cluster assignment (eq. 10).

  Args:
    x: [B, H, W, C] target feature map R' (any float dtype; gradients are stopped).
    k: number of clusters K >= 1 (python int).
    iterations: number of Lloyd steps >= 1 (python int).
    metric: 'cosine' clusters the L2-normalised features by cosine distance (spherical k-means)
      and returns L2-normalised centroids; 'euclidean' clusters the raw features.

  Returns:
    (centroids [B, H, W, C] float32: the centroid of each pixel's cluster, computed from the
    final assignment; assignment [B, H, W] int32 in [0, k)).
  """
  if metric not in METRICS:
    raise ValueError(f'metric must be one of {METRICS}, got {metric!r}')
  if k < 1 or iterations < 1:
    raise ValueError(f'k and iterations must be >= 1, got k={k}, iterations={iterations}')
  shape = tf.shape(x)
  pixels = tf.reshape(tf.stop_gradient(tf.cast(x, tf.float32)), [shape[0], -1, shape[3]])
  if metric == 'cosine':
    pixels = tf.math.l2_normalize(pixels, axis=-1)
  centroids = _farthest_point_init(pixels, k, metric)
  for _ in range(iterations):
    assignment, centroids = _lloyd_step(pixels, centroids, metric)
  if metric == 'cosine':
    centroids = tf.math.l2_normalize(centroids, axis=-1)  # METHOD.md §4: normalised centroid
  per_pixel = tf.gather(centroids, assignment, batch_dims=1)
  return tf.reshape(per_pixel, shape), tf.reshape(assignment, shape[:3])


def dense_cluster_similarity(q, x, assignment):
  """Mean cosine between Q_ij and every target pixel of its cluster ("dense clustering", Table 3b).

  Args:
    q: [B, H, W, C] online prediction Q.
    x: [B, H, W, C] target map R' (gradients are stopped).
    assignment: [B, H, W] int cluster of each target pixel, as returned by `kmeans`.

  Returns:
    float32 [B, H, W].
  """
  shape = tf.shape(q)
  q = tf.math.l2_normalize(tf.reshape(tf.cast(q, tf.float32), [shape[0], -1, shape[3]]), -1)
  x = tf.stop_gradient(tf.cast(x, tf.float32))
  x = tf.math.l2_normalize(tf.reshape(x, [shape[0], -1, shape[3]]), -1)
  labels = tf.reshape(assignment, [shape[0], -1])
  same = tf.cast(tf.equal(labels[:, :, None], labels[:, None, :]), tf.float32)  # [B, N, N]
  cosines = tf.einsum('bnc,bmc->bnm', q, x)
  mean = tf.reduce_sum(same * cosines, axis=-1) / tf.reduce_sum(same, axis=-1)
  return tf.reshape(mean, shape[:3])
