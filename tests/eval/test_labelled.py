"""Labelled folders: pairing by name, nearest-neighbour labels, names, the contiguous split."""

import numpy as np
import pytest
from PIL import Image

from multisiam_tf.eval import labelled
from multisiam_tf.eval import probe


@pytest.fixture
def folder(tmp_path):
  """Three labelled images (one a JPEG), one image without a label, 2 named classes of 4."""
  (tmp_path / 'images').mkdir()
  (tmp_path / 'labels').mkdir()
  rng = np.random.default_rng(0)
  for name, ext in (('a', 'png'), ('b', 'jpg'), ('c', 'png'), ('d', 'png')):
    Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)).save(
        tmp_path / 'images' / f'{name}.{ext}')
    if name != 'd':
      label = np.full((6, 9), 3, np.uint8)
      label[:, :3] = ord(name) - ord('a')  # a stripe of the image's own id
      Image.fromarray(label).save(tmp_path / 'labels' / f'{name}.png')
  (tmp_path / 'classes.txt').write_text('first\nsecond\n')
  return str(tmp_path)


def test_load_pairs_by_name_and_keeps_label_ids(folder):
  images, labels = labelled.load(folder, (4, 5))
  assert images.shape == (3, 4, 5, 3) and labels.shape == (3, 4, 5)
  for i in range(3):  # nearest neighbour: only the ids drawn, in the same places
    assert set(np.unique(labels[i])) == {i, 3}
    assert np.all(labels[i][:, 0] == i) and np.all(labels[i][:, -1] == 3)


def test_rgb_label_is_rejected(folder):
  Image.new('RGB', (9, 6)).save(f'{folder}/labels/a.png')
  with pytest.raises(ValueError, match='one-channel'):
    labelled.load(folder, (4, 5))


def test_class_names_fill_missing_with_ids(folder):
  names = labelled.dataset(folder).class_names  # from DIR/classes.txt
  assert labelled.name_list(names, 4) == ['first', 'second', '2', '3']


def test_split_is_contiguous_and_refuses_an_empty_side():
  images, labels = np.arange(10)[:, None], np.arange(10)[:, None] + 100
  (train_x, train_y), (val_x, val_y) = labelled.split(images, labels, 0.7)
  assert train_x.ravel().tolist() == list(range(7)) and val_y.ravel().tolist() == [107, 108, 109]
  with pytest.raises(ValueError, match='empties a split'):
    labelled.split(images, labels, 0.01)


def test_load_images_reads_a_labelled_folders_images(folder):
  images = labelled.load_images(folder, limit=2)
  assert images.shape == (2, 6, 9, 3)


@pytest.mark.parametrize('data_format', ['folder', 'camvid'])
def test_a_label_of_another_size_than_its_image_is_an_error_naming_it(folder, data_format):
  Image.fromarray(np.zeros((9, 6), np.uint8)).save(f'{folder}/labels/b.png')  # transposed
  with pytest.raises(ValueError, match=r'labels/b.png is 6x9 \(WxH\) but its image .*b.jpg is 9x6'):
    probe.load_splits((4, 5), data=folder, data_format=data_format, num_classes=4)


def test_images_without_a_label_are_left_out_with_a_count(folder, caplog):
  with caplog.at_level('WARNING'):
    assert len(labelled.pairs(folder)) == 3
  assert f'1 of the 4 images in {folder}/images have no label of the same name' in caplog.text


def test_label_values_beyond_num_classes_are_counted_in_a_warning(folder, caplog):
  # ids 0, 1, 2 in stripes of 6x3 px, 3 elsewhere: with 2 classes and 3 ignored, c's 2 is unknown
  with caplog.at_level('WARNING'):
    probe.load_splits((6, 9), data=folder, num_classes=2, ignore_index=3, train_fraction=0.5)
  assert '18 label pixels hold class ids >= --num_classes 2 (2) other than the ignore value 3' \
      in caplog.text
  caplog.clear()
  with caplog.at_level('WARNING'):
    probe.load_splits((6, 9), data=folder, num_classes=3, ignore_index=3, train_fraction=0.5)
  assert 'label pixels hold class ids' not in caplog.text


@pytest.mark.parametrize('count, expected', [(1, [0]), (2, [0, 9]), (4, [0, 3, 6, 9]),
                                             (10, list(range(10)))])
def test_spread_keeps_evenly_spaced_frames_with_their_labels(count, expected):
  images = np.random.default_rng(count).integers(0, 256, (10, 2, 3, 3), dtype=np.uint8)
  labels = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 3), np.uint8)
  kept_images, kept_labels = labelled.spread(images, labels, count)
  np.testing.assert_array_equal(kept_images, images[expected])
  np.testing.assert_array_equal(kept_labels[:, 0, 0], expected)


@pytest.mark.parametrize('count', [0, 11])
def test_spread_of_more_images_than_there_are_or_none_is_an_error(count):
  with pytest.raises(ValueError, match=f'--train_images {count}: the training split has 10'):
    labelled.spread(np.zeros((10, 1, 1, 3)), np.zeros((10, 1, 1)), count)


def test_train_images_cuts_the_training_split_only(folder):
  full, val, *_ = probe.load_splits((6, 9), train=folder, val=folder, num_classes=4)
  train, val_cut, *_ = probe.load_splits((6, 9), train=folder, val=folder, num_classes=4,
                                         train_images=2)
  np.testing.assert_array_equal(train[0], full[0][[0, len(full[0]) - 1]])
  np.testing.assert_array_equal(val_cut[0], val[0])
