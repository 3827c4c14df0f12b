"""The synthetic street scenes: instance counts, classes, and masks that match the pixels."""

import numpy as np
import pytest

from multisiam_tf.data import synthetic

SIZE = (120, 180)
SEEDS = range(12)


@pytest.fixture(scope='module')
def scenes():
  return [synthetic.make_scene(seed, *SIZE) for seed in SEEDS]


def test_class_names():
  assert synthetic.CLASSES == synthetic.BACKGROUND_CLASSES + synthetic.INSTANCE_CLASSES
  assert len(set(synthetic.CLASSES)) == len(synthetic.CLASSES)
  assert {'sky', 'road', 'building'} <= set(synthetic.BACKGROUND_CLASSES)
  assert len(synthetic.INSTANCE_CLASSES) >= 5


def test_arrays(scenes):
  for scene in scenes:
    assert scene.image.shape == SIZE + (3,) and scene.image.dtype == np.uint8
    assert scene.labels.shape == SIZE and scene.labels.dtype == np.uint8
    assert scene.instances.shape == SIZE and scene.instances.dtype == np.uint8
    assert scene.labels.max() < len(synthetic.CLASSES)


def test_three_to_twelve_visible_instances_numbered_without_gaps(scenes):
  counts = []
  for scene in scenes:
    ids = np.unique(scene.instances)
    counts.append(len(ids) - 1)
    np.testing.assert_array_equal(ids, np.arange(len(ids)))
  assert min(counts) >= 3 and max(counts) <= 12
  assert len(set(counts)) >= 3  # the count varies from scene to scene


def test_instances_have_one_instance_class_and_background_has_none(scenes):
  thing_ids = np.arange(len(synthetic.BACKGROUND_CLASSES), len(synthetic.CLASSES))
  seen = set()
  for scene in scenes:
    background = scene.instances == 0
    assert not np.isin(scene.labels[background], thing_ids).any()
    for i in range(1, scene.instances.max() + 1):
      classes = np.unique(scene.labels[scene.instances == i])
      assert len(classes) == 1 and classes[0] in thing_ids
      seen.add(int(classes[0]))
  assert len(seen) >= 5


def test_masks_follow_the_edges_of_the_image(scenes):
  """Colour changes across mask borders, not inside regions: a shifted mask would fail."""
  across, within = [], []
  for scene in scenes:
    image = scene.image.astype(np.float32)
    step = np.abs(image[:, 1:] - image[:, :-1]).sum(-1)
    border = ((scene.labels[:, 1:] != scene.labels[:, :-1])
              | (scene.instances[:, 1:] != scene.instances[:, :-1]))
    across.append(step[border].mean())
    within.append(step[~border].mean())
  assert np.mean(across) > 3 * np.mean(within)


def test_classes_look_like_themselves(scenes):
  means = {}
  for scene in scenes:
    for class_id, name in enumerate(synthetic.CLASSES):
      pixels = scene.image[scene.labels == class_id].astype(np.float32)
      if len(pixels):
        means.setdefault(name, []).append(pixels.mean(0))
  r, g, b = np.mean(means['sky'], 0)
  assert b > r + 40 and b > g
  r, g, b = np.mean(means['tree'], 0)
  assert g > r and g > b
  road = np.mean(means['road'], 0)
  assert road.max() - road.min() < 20 and road.mean() < 110  # grey asphalt


def test_deterministic_for_a_seed():
  a, b, c = (synthetic.make_scene(s, 64, 96) for s in (7, 7, 8))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a.image, c.image)
