"""MultiSiam losses (paper eqs. 1, 10, 11, 15, 20-21; METHOD.md §4), all computed in float32.

Targets come from the target network, which gradients never update (eq. 2), so every target
argument is wrapped in stop_gradient here as well. Symmetrisation (each view once online, once
target) is the caller's: these functions score one direction.
"""

import tensorflow as tf

from multisiam_tf.models import kmeans as kmeans_lib


def _f32(x):
  return tf.cast(x, tf.float32)


def negative_cosine(online, target):
  """Mean of -cos(online, target) over every axis but the last, for [..., D] pairs: L_1D_img for
  q, z' [B, D] (eq. 1), L_2D for [B, H, W, C] maps Q and T, with T = Kmeans(R') L_2D_cluster
  (eq. 10), with T = R' L_2D_wo_cluster (eq. 15, App. B.1). A float32 scalar."""
  online = tf.math.l2_normalize(_f32(online), axis=-1)
  target = tf.math.l2_normalize(tf.stop_gradient(_f32(target)), axis=-1)
  return -tf.reduce_mean(tf.reduce_sum(online * target, axis=-1))


def dense_cluster_loss(q_map, target_map, assignment):
  """Dense clustering (Table 3b): mean of -cos(Q_ij, R'_i'j') over each pixel's whole cluster."""
  return -tf.reduce_mean(kmeans_lib.dense_cluster_similarity(q_map, target_map, assignment))


def moco_pixel_loss(g, k_pos, queue, temperature):
  """MoCo-based L_2D_cluster: per-pixel InfoNCE averaged over pixels and batch (eqs. 20-21).

  Eq. 21 prints the softmax fraction itself; the loss to minimise is its -log, the standard
  InfoNCE of MoCo and DenseCL, which is what this computes. g, k+ and the queue are
  L2-normalised first (as MoCo/DenseCL keys and queries), so logits are cosines / temperature.

  Args:
    g: [B, H, W, D] online map G.
    k_pos: [B, H, W, D] positive per pixel, k+_ij = Kmeans(G'_ij).
    queue: [N, D] negatives k- from other images.
    temperature: tau of eq. 21 (0.2 in App. B.2).

  Returns:
    float32 scalar.
  """
  g = tf.math.l2_normalize(_f32(g), axis=-1)
  k_pos = tf.math.l2_normalize(tf.stop_gradient(_f32(k_pos)), axis=-1)
  queue = tf.math.l2_normalize(tf.stop_gradient(_f32(queue)), axis=-1)
  positive = tf.reduce_sum(g * k_pos, axis=-1, keepdims=True)
  negatives = tf.einsum('bhwd,nd->bhwn', g, queue)
  logits = tf.concat([positive, negatives], axis=-1) / temperature
  return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=-1) - logits[..., 0])


def total_loss(l_1d, l_2d, lam):
  """L_MultiSiam = lambda L_1D_img + (1 - lambda) L_2D_cluster (eq. 11)."""
  return lam * _f32(l_1d) + (1 - lam) * _f32(l_2d)
