"""Labelled datasets in their published layouts: fixture trees, the real Waymo frame, and the
label mappings against the published tables (written out here independently)."""

import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from multisiam_tf.data.sources import waymo_v1
from multisiam_tf.eval import labelled

WAYMO_FRAME = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..',
                           'shared', 'data', 'waymo_v1', 'pvps_data_one_frame.tfrecord')

# cityscapesScripts/helpers/labels.py: (labelId, trainId) of all 35 labels, -1 and 255 ignored
CITYSCAPES_LABELS = [
    (0, 255), (1, 255), (2, 255), (3, 255), (4, 255), (5, 255), (6, 255), (7, 0), (8, 1),
    (9, 255), (10, 255), (11, 2), (12, 3), (13, 4), (14, 255), (15, 255), (16, 255), (17, 5),
    (18, 255), (19, 6), (20, 7), (21, 8), (22, 9), (23, 10), (24, 11), (25, 12), (26, 13),
    (27, 14), (28, 15), (29, 255), (30, 255), (31, 16), (32, 17), (33, 18), (-1, 255)]


def _save(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)
  return path


def test_cityscapes_label_ids_map_to_the_published_train_ids():
  rng = np.random.default_rng(0)
  label_ids = rng.integers(0, 256, (40, 50)).astype(np.uint8)
  table = {label_id % 256: train_id for label_id, train_id in CITYSCAPES_LABELS}
  expected = np.vectorize(lambda v: table.get(v, 255))(label_ids).astype(np.uint8)
  np.testing.assert_array_equal(labelled.cityscapes_train_ids(label_ids), expected)
  assert len(labelled.CITYSCAPES_CLASSES) == 19


def test_cityscapes_pairs_images_with_their_gtfine_label_ids(tmp_path):
  root = str(tmp_path)
  ids = np.array([[7, 26, 0, 33]] * 3, np.uint8)  # road, car, unlabeled, bicycle
  for city, stem in (('aachen', 'aachen_000000_000019'), ('bremen', 'bremen_000001_000019')):
    _save(f'{root}/leftImg8bit/val/{city}/{stem}_leftImg8bit.png', np.zeros((3, 4, 3), np.uint8))
    _save(f'{root}/gtFine/val/{city}/{stem}_gtFine_labelIds.png', ids)
    _save(f'{root}/gtFine/val/{city}/{stem}_gtFine_color.png', np.zeros((3, 4, 3), np.uint8))
  found = labelled.dataset(root, 'cityscapes', 'val')
  assert [os.path.basename(i) for i, _ in found.items] == [
      'aachen_000000_000019_leftImg8bit.png', 'bremen_000001_000019_leftImg8bit.png']
  assert (found.num_classes, found.ignore_index) == (19, 255)
  images, labels = labelled.load(root, None, format='cityscapes', split='val')
  assert images.shape == (2, 3, 4, 3)
  np.testing.assert_array_equal(labels[1], [[0, 13, 255, 18]] * 3)
  os.remove(f'{root}/gtFine/val/bremen/bremen_000001_000019_gtFine_labelIds.png')
  with pytest.raises(FileNotFoundError, match='bremen_000001_000019_leftImg8bit.png has no label'):
    labelled.dataset(root, 'cityscapes', 'val')


def test_bdd100k_masks_are_train_ids_already(tmp_path):
  root = str(tmp_path)
  mask = np.array([[0, 18, 255]], np.uint8)
  _save(f'{root}/images/10k/val/7d2f7975-e0c1c5a7.jpg', np.zeros((1, 3, 3), np.uint8))
  _save(f'{root}/labels/sem_seg/masks/val/7d2f7975-e0c1c5a7.png', mask)
  found = labelled.dataset(root, 'bdd100k', 'val')
  assert (found.num_classes, found.ignore_index) == (19, 255)
  np.testing.assert_array_equal(found.read(found.items[0], None)[1], mask)
  with pytest.raises(FileNotFoundError, match='no labelled image at'):
    labelled.dataset(root, 'bdd100k', 'train')


def test_camvid_is_the_folder_layout_with_11_ignored(tmp_path):
  _save(f'{tmp_path}/images/a.png', np.zeros((2, 2, 3), np.uint8))
  _save(f'{tmp_path}/labels/a.png', np.array([[0, 11], [10, 3]], np.uint8))
  found = labelled.dataset(str(tmp_path), 'camvid')
  assert (found.num_classes, found.ignore_index, len(found.class_names)) == (11, 11, 11)


def _png16(array):
  return tf.io.encode_png(array[..., None].astype(np.uint16)).numpy()


def test_waymo_panoptic_labels_give_semantic_classes(tmp_path):
  rng = np.random.default_rng(1)
  semantic = rng.integers(0, 29, (6, 8))
  panoptic = semantic * 1000 + rng.integers(0, 1000, (6, 8))
  jpeg = io.BytesIO()
  Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(jpeg, 'JPEG')
  message = waymo_v1.message_class('Frame')()
  message.images.add(name=1, image=jpeg.getvalue())  # no label: not a labelled item
  labelled_image = message.images.add(name=2, image=jpeg.getvalue())
  labelled_image.camera_segmentation_label.panoptic_label_divisor = 1000
  labelled_image.camera_segmentation_label.panoptic_label = _png16(panoptic)
  path = str(tmp_path / 'segment.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(message.SerializeToString())
    writer.write(message.SerializeToString())

  found = labelled.dataset(path, 'waymo_v1')

  assert found.items == [(path, 0, 1), (path, len(message.SerializeToString()) + 16, 1)]
  assert (found.num_classes, found.ignore_index) == (29, 0)
  image, label = found.read(found.items[1], None)
  assert image.shape == (6, 8, 3)
  np.testing.assert_array_equal(label, semantic)
  np.testing.assert_array_equal(labelled.waymo_semantic(panoptic, 1000), semantic)


def test_the_real_waymo_frame_has_five_labelled_cameras():
  if not os.path.exists(WAYMO_FRAME):
    pytest.skip(f'the real Waymo v1 frame is not at {os.path.normpath(WAYMO_FRAME)} (a '
                'development checkout has it in ../shared/data)')
  images, labels = labelled.load(WAYMO_FRAME, (64, 96), format='waymo_v1')
  assert images.shape == (5, 64, 96, 3) and labels.shape == (5, 64, 96)
  assert labels.max() < 29 and len(np.unique(labels)) > 5  # road, sky, cars...


@pytest.mark.parametrize('layout', ['cityscapes', 'bdd100k'])
def test_a_label_of_another_size_than_its_image_is_an_error_naming_it(tmp_path, layout):
  root = str(tmp_path)
  if layout == 'cityscapes':
    image = _save(f'{root}/leftImg8bit/val/ulm/ulm_000000_000019_leftImg8bit.png',
                  np.zeros((3, 4, 3), np.uint8))
    label = f'{root}/gtFine/val/ulm/ulm_000000_000019_gtFine_labelIds.png'
  else:
    image = _save(f'{root}/images/10k/val/7d2f7975-e0c1c5a7.jpg', np.zeros((3, 4, 3), np.uint8))
    label = f'{root}/labels/sem_seg/masks/val/7d2f7975-e0c1c5a7.png'
  _save(label, np.zeros((4, 3), np.uint8))  # transposed
  with pytest.raises(ValueError, match=f'{label} is 3x4 \\(WxH\\) but its image {image} is 4x3'):
    labelled.load(root, (2, 2), format=layout, split='val')


def test_a_waymo_panoptic_label_of_another_size_is_an_error_naming_the_record(tmp_path):
  jpeg = io.BytesIO()
  Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(jpeg, 'JPEG')
  message = waymo_v1.message_class('Frame')()
  camera = message.images.add(name=1, image=jpeg.getvalue())
  camera.camera_segmentation_label.panoptic_label_divisor = 1000
  camera.camera_segmentation_label.panoptic_label = _png16(np.zeros((8, 6), np.int64))
  path = str(tmp_path / 'segment.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(message.SerializeToString())
  with pytest.raises(ValueError, match=f'{path}: record at byte 0, panoptic label of image 0 is '
                     f'6x8 \\(WxH\\) but its image {path}: record at byte 0, image 0 is 8x6'):
    labelled.load(path, (4, 4), format='waymo_v1')
