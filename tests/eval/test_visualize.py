"""Cluster pictures: assignment upsampling, colour blending, grid layout, the script."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from multisiam_tf import palette
from multisiam_tf.eval import visualize

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts',
                      'visualize.py')


def striped_features(images):
  """C5 of 2x3 cells whose columns point three different ways: three obvious clusters."""
  directions = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
  c5 = tf.tile(directions[None, None], [tf.shape(images)[0], 2, 1, 1])
  return {'c5': c5 + 0.01 * tf.random.stateless_normal(tf.shape(c5), (0, 0))}


@pytest.mark.parametrize('upsampling', visualize.UPSAMPLING)
def test_clusters_follow_c5_cells(upsampling):
  images = np.zeros((2, 32, 48, 3), np.uint8)  # each C5 cell covers 16x16 pixels
  assignment = visualize.clusters(striped_features, images, k=3, upsampling=upsampling)
  assert assignment.shape == (2, 32, 48)
  for image in assignment:
    columns = [np.unique(image[:, 16 * j:16 * (j + 1)]) for j in range(3)]
    assert all(len(c) == 1 for c in columns)  # a cell column is one cluster, to its edges
    assert len({int(c[0]) for c in columns}) == 3


def test_overlay_blends_each_pixels_cluster_colour():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
  assignment = rng.integers(0, 10, (2, 5, 7))  # beyond the palette: colours repeat
  blended = visualize.overlay(images, assignment, alpha=0.25)
  expected = 0.75 * images + 0.25 * palette.PALETTE[assignment % len(palette.PALETTE)]
  np.testing.assert_allclose(blended, expected, atol=0.5)
  assert blended.dtype == np.uint8


def test_grid_puts_each_image_beside_its_overlay():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (5, 6, 8, 3), dtype=np.uint8)
  overlays = rng.integers(0, 256, (5, 6, 8, 3), dtype=np.uint8)
  canvas = visualize.grid(images, overlays, columns=2, pad=4)
  assert canvas.shape == (3 * 6 + 4 * 4, 4 * 8 + 5 * 4, 3)  # 3 rows of 2 pairs
  y, x = 4 + 2 * (6 + 4), 4  # image 4 starts row 3; its overlay is the next tile
  np.testing.assert_array_equal(canvas[y:y + 6, x:x + 8], images[4])
  np.testing.assert_array_equal(canvas[y:y + 6, x + 12:x + 20], overlays[4])
  assert np.all(canvas[y:y + 6, x + 24:] == 255)  # the missing sixth pair stays blank


def test_visualize_script_writes_the_grid(scenes, tiny_architecture, tmp_path):
  out = tmp_path / 'clusters.png'
  depth, width, output_stride = tiny_architecture
  completed = subprocess.run(
      [sys.executable, SCRIPT, '--random_init', '--depth', str(depth), '--width', str(width),
       '--output_stride', str(output_stride), '--images', scenes.folder, '--num', '3',
       '--columns', '2', '--out', str(out)],
      capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  h, w = scenes.size
  picture = np.asarray(Image.open(out))
  assert picture.shape == (2 * h + 3 * 4, 4 * w + 5 * 4, 3)
  # Overlays differ from their images; originals appear untouched.
  original = np.asarray(Image.open(os.path.join(scenes.folder, 'images', '00000.png')))
  np.testing.assert_array_equal(picture[4:4 + h, 4:4 + w], original)
  assert np.abs(picture[4:4 + h, 8 + w:8 + 2 * w].astype(int) - original).mean() > 10
