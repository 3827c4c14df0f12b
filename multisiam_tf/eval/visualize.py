"""Intra-image clusters of a backbone's final map, drawn over the images (paper Fig. 6).

K-means (METHOD.md section 4: per image, cosine, farthest-point initialisation) groups the C5
cells of each image; each cell's cluster is upsampled to the image and alpha-blended over it as a
colour. The grid shows every image beside its overlay. Cluster ids carry no meaning across
images: a colour marks "the same cluster" only within one picture.
"""

import numpy as np
import tensorflow as tf

from multisiam_tf import palette
from multisiam_tf.models import kmeans
UPSAMPLING = ('nearest', 'bilinear')


def clusters(features, images, k=3, iterations=10, upsampling='bilinear', batch_size=8):
  """int [N, H, W] cluster of every pixel of uint8 images [N, H, W, 3].

  'nearest' shows the C5 cells as blocks; 'bilinear' upsamples the one-hot assignment and takes
  the argmax, so borders fall between cell centres instead of on the cell grid.
  """
  if upsampling not in UPSAMPLING:
    raise ValueError(f'upsampling must be one of {UPSAMPLING}, got {upsampling!r}')
  size = images.shape[1:3]
  out = []
  for start in range(0, len(images), batch_size):
    c5 = features(tf.constant(images[start:start + batch_size], tf.float32))['c5']
    _, assignment = kmeans.kmeans(c5, k, iterations, metric='cosine')
    if upsampling == 'nearest':
      full = tf.image.resize(assignment[..., None], size, method='nearest')[..., 0]
    else:
      full = tf.argmax(tf.image.resize(tf.one_hot(assignment, k), size), axis=-1)
    out.append(full.numpy())
  return np.concatenate(out).astype(np.int32)


def overlay(images, assignment, alpha=0.5):
  """uint8 images with each pixel's cluster colour blended in at opacity alpha."""
  colours = palette.PALETTE[assignment % len(palette.PALETTE)].astype(np.float32)
  return np.round((1 - alpha) * images + alpha * colours).astype(np.uint8)


def grid(images, overlays, columns=2, pad=4):
  """One uint8 picture: rows of (image, overlay) pairs, `columns` pairs a row, white gaps.

  Size: height rows * H + (rows + 1) * pad, width 2 * c * W + (2 * c + 1) * pad, where
  c = min(columns, N) and rows = ceil(N / columns).
  """
  n, h, w, _ = images.shape
  columns = min(columns, n)
  rows = -(-n // columns)
  canvas = np.full((rows * h + (rows + 1) * pad, 2 * columns * w + (2 * columns + 1) * pad, 3),
                   255, np.uint8)
  for i in range(n):
    y = pad + (i // columns) * (h + pad)
    for j, tile in enumerate((images[i], overlays[i])):
      x = pad + (2 * (i % columns) + j) * (w + pad)
      canvas[y:y + h, x:x + w] = tile
  return canvas


def render(features, images, k=3, iterations=10, upsampling='bilinear', alpha=0.5, columns=2):
  """The cluster picture of uint8 images [N, H, W, 3] under a feature function (see probe)."""
  assignment = clusters(features, images, k, iterations, upsampling)
  return grid(images, overlay(images, assignment, alpha), columns)
