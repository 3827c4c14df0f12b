"""Labelled images for the dense probe and fine-tuning, in their published layouts.

`dataset(path, format, split)` lists a dataset's labelled images (Labelled: items, a reader to
uint8 image and class-id label, the classes); `load` reads them into arrays at one size.
Formats:
  folder      DIR/images/NAME.(png|jpg) with DIR/labels/NAME.png (class id per pixel), an optional
              DIR/classes.txt naming the classes in id order: the synthetic scenes'
              (`scripts/make_demo_data.py`) layout
  camvid      the same layout with CamVid's 11 classes, 11 = unlabelled (ignored)
  cityscapes  leftImg8bit/SPLIT/CITY/*_leftImg8bit.png with gtFine/SPLIT/CITY/*_gtFine_labelIds.png,
              labelIds mapped to the 19 trainIds (255 ignored)
  bdd100k     images/10k/SPLIT/NAME.jpg with labels/sem_seg/masks/SPLIT/NAME.png (trainIds, 255)
  waymo_v1    segment TFRecords: the camera images with a panoptic label, semantic class =
              panoptic value // divisor (Waymo's 29 classes, 0 = undefined, ignored)
"""

import glob
import io
import os
from typing import Callable, NamedTuple

from absl import logging
import numpy as np
from PIL import Image

from multisiam_tf.data import sources
from multisiam_tf.data.sources import files as source_files
from multisiam_tf.data.sources import waymo_v1

def image_paths(folder):
  """Sorted paths of the PNG and JPEG files in folder."""
  return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if source_files.is_image(n)]


def pairs(folder):
  """Sorted (image path, label path) of every image with a label of the same name; the images
  without one are left out with a warning that counts them."""
  image_dir, label_dir = os.path.join(folder, 'images'), os.path.join(folder, 'labels')
  if not os.path.isdir(image_dir) or not os.path.isdir(label_dir):
    raise FileNotFoundError(f'{folder} needs images/ and labels/ subfolders')
  labels = {os.path.splitext(n)[0]: n for n in os.listdir(label_dir) if n.endswith('.png')}
  images = image_paths(image_dir)
  stems = [os.path.splitext(os.path.basename(path))[0] for path in images]
  found = [(path, os.path.join(label_dir, labels[stem]))
           for path, stem in zip(images, stems) if stem in labels]
  if not found:
    raise FileNotFoundError(f'no image in {image_dir} has a label of the same name in {label_dir}')
  if len(found) < len(images):
    logging.warning('%d of the %d images in %s have no label of the same name in %s: left out',
                    len(images) - len(found), len(images), image_dir, label_dir)
  return found


def read_image(path, size=None):
  """uint8 [H, W, 3] of an image file (a path or a file object); resized bilinearly to size (H, W) when given."""
  return _resized(np.asarray(Image.open(path).convert('RGB')), size)


def read_label(path, size=None, to_classes=None):
  """uint8 [H, W] class ids, mapped by `to_classes` (label ids -> class ids) when given, resized
  with nearest neighbour (ids must not blend)."""
  label = Image.open(path)
  if label.mode not in ('L', 'P'):
    raise ValueError(f'{path}: a label must be a one-channel PNG of class ids, not {label.mode}')
  label = np.asarray(label, dtype=np.uint8)
  return resize_label(to_classes(label) if to_classes else label, size)


def check_size(image, label, image_name, label_name):
  """Raises ValueError naming both when the image [H, W, 3] and its label [H, W] differ in size:
  a label resized to its image would silently misplace every class."""
  if image.shape[:2] != label.shape[:2]:
    raise ValueError(f'{label_name} is {label.shape[1]}x{label.shape[0]} (WxH) but its image '
                     f'{image_name} is {image.shape[1]}x{image.shape[0]}')


def resize_label(label, size=None):
  """uint8 [H, W] resized to size (H, W) with nearest neighbour."""
  return _resized(label, size, Image.NEAREST)


def load(folder, size, limit=None, format='folder', split='train'):  # pylint: disable=redefined-builtin
  """(images uint8 [N, H, W, 3], labels uint8 [N, H, W]) of the first `limit` items, at size."""
  return arrays(dataset(folder, format, split), size, limit)


def arrays(found, size, limit=None):
  """(images, labels) of the first `limit` items of Labelled `found`, read at size."""
  read = [found.read(item, size) for item in found.items[:limit]]
  return np.stack([image for image, _ in read]), np.stack([label for _, label in read])


def load_images(folder, size=None, limit=None):
  """uint8 [N, H, W, 3] of the first `limit` images of folder (or of folder/images), at size.

  Without a size, every image is resized to the first one's.
  """
  if os.path.isdir(os.path.join(folder, 'images')):
    folder = os.path.join(folder, 'images')
  paths = image_paths(folder)[:limit]
  if not paths:
    raise FileNotFoundError(f'no PNG or JPEG image in {folder}')
  first = read_image(paths[0], size)
  return np.stack([first] + [read_image(p, first.shape[:2]) for p in paths[1:]])


def name_list(names, num_classes):
  """The first num_classes of `names`, ids as strings where names run out."""
  return [names[i] if i < len(names) else str(i) for i in range(num_classes)]


def _listed_names(folder):
  path = os.path.join(folder, 'classes.txt')
  if not os.path.exists(path):
    return ()
  with open(path) as f:
    return tuple(line.strip() for line in f if line.strip())


def split(images, labels, train_fraction):
  """Contiguous split in sorted order, so neighbouring video frames stay on one side."""
  n_train = int(round(len(images) * train_fraction))
  if not 0 < n_train < len(images):
    raise ValueError(f'train_fraction {train_fraction} of {len(images)} images empties a split')
  return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


def spread(images, labels, count):
  """`count` of the items, evenly spaced in sorted order (first and last included), so that a
  few labelled frames still span every sequence of a video dataset."""
  if not 0 < count <= len(images):
    raise ValueError(f'--train_images {count}: the training split has {len(images)} images')
  keep = np.unique(np.round(np.linspace(0, len(images) - 1, count)).astype(int))
  return images[keep], labels[keep]


CAMVID_CLASSES = ('sky', 'building', 'pole', 'road', 'pavement', 'tree', 'sign_symbol', 'fence',
                  'car', 'pedestrian', 'bicyclist')
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                      'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
                      'truck', 'bus', 'train', 'motorcycle', 'bicycle')
# cityscapesScripts labels.py: the labelId of each trainId 0..18; every other labelId is ignored
_CITYSCAPES_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
WAYMO_CLASSES = ('undefined', 'ego_vehicle', 'car', 'truck', 'bus', 'other_large_vehicle',
                 'bicycle', 'motorcycle', 'trailer', 'pedestrian', 'cyclist', 'motorcyclist',
                 'bird', 'ground_animal', 'construction_cone_pole', 'pole', 'pedestrian_object',
                 'sign', 'traffic_light', 'building', 'road', 'lane_marker', 'road_marker',
                 'sidewalk', 'vegetation', 'sky', 'ground', 'dynamic', 'static')


class Labelled(NamedTuple):
  items: list  # one per labelled image, what `read` takes
  read: Callable  # (item, size or None) -> (uint8 image [H, W, 3], uint8 class ids [H, W])
  num_classes: int  # None for a folder: the caller says
  ignore_index: int
  class_names: tuple


def cityscapes_train_ids(label_ids):
  """Cityscapes labelIds -> the 19 trainIds, 255 for every label that is not trained on."""
  table = np.full(256, 255, np.uint8)
  table[list(_CITYSCAPES_LABEL_IDS)] = np.arange(len(_CITYSCAPES_LABEL_IDS))
  return table[label_ids]


def waymo_semantic(panoptic, divisor):
  """Waymo panoptic labels (semantic * divisor + instance) -> uint8 semantic class ids."""
  return (np.asarray(panoptic, np.int64) // divisor).astype(np.uint8)


def _matched(images, label_of, where):
  """(image, label) for each image path, the label path given by label_of; all must exist."""
  if not images:
    raise FileNotFoundError(f'no labelled image at {where}')
  found = []
  for image in sorted(images):
    label = label_of(image)
    if not os.path.exists(label):
      raise FileNotFoundError(f'{image} has no label {label}')
    found.append((image, label))
  return found


def _file_reader(to_classes=None):
  def read(item, size):
    image, label = read_image(item[0]), read_label(item[1], to_classes=to_classes)
    check_size(image, label, *item)
    return _resized(image, size), resize_label(label, size)
  return read


def _resized(array, size, resample=Image.BILINEAR):
  """uint8 `array` resized to size (H, W), or as it is without a size."""
  if size is None:
    return array
  return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample))


def _waymo_items(path):
  """(file, record offset, image index) of every camera image with a panoptic label."""
  items = []
  for file in sources.list_inputs(path, 'waymo_v1').files:
    for offset in source_files.record_offsets(file):
      frame = waymo_v1.message_class('Frame').FromString(source_files.read_record(file, offset))
      items += [(file, offset, i) for i, image in enumerate(frame.images)
                if image.camera_segmentation_label.panoptic_label]
  if not items:
    raise FileNotFoundError(f'no camera image with a panoptic label in {path}')
  return items


def _read_waymo(item, size):
  file, offset, index = item
  frame = waymo_v1.message_class('Frame').FromString(source_files.read_record(file, offset))
  camera = frame.images[index]
  segmentation = camera.camera_segmentation_label
  panoptic = np.asarray(Image.open(io.BytesIO(segmentation.panoptic_label)))
  semantic = waymo_semantic(panoptic, segmentation.panoptic_label_divisor)
  image = read_image(io.BytesIO(camera.image))
  check_size(image, semantic, f'{file}: record at byte {offset}, image {index}',
             f'{file}: record at byte {offset}, panoptic label of image {index}')
  return _resized(image, size), resize_label(semantic, size)


FORMATS = ('folder', 'camvid', 'cityscapes', 'bdd100k', 'waymo_v1')


def dataset(path, format='folder', split='train'):  # pylint: disable=redefined-builtin
  """The labelled images of `split` of the dataset at `path`, in layout `format` (FORMATS)."""
  if format in ('folder', 'camvid'):
    items = pairs(path)
    if format == 'camvid':
      return Labelled(items, _file_reader(), 11, 11, CAMVID_CLASSES)
    return Labelled(items, _file_reader(), None, 255, _listed_names(path))
  if format == 'cityscapes':
    images = glob.glob(os.path.join(path, 'leftImg8bit', split, '*', '*_leftImg8bit.png'))
    def label_of(image):
      city = os.path.basename(os.path.dirname(image))
      stem = os.path.basename(image)[:-len('_leftImg8bit.png')]
      return os.path.join(path, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png')
    where = f'{path}/leftImg8bit/{split}/CITY/*_leftImg8bit.png'
    return Labelled(_matched(images, label_of, where), _file_reader(cityscapes_train_ids), 19,
                    255, CITYSCAPES_CLASSES)
  if format == 'bdd100k':
    images = glob.glob(os.path.join(path, 'images', '10k', split, '*.jpg'))
    def label_of(image):
      stem = os.path.splitext(os.path.basename(image))[0]
      return os.path.join(path, 'labels', 'sem_seg', 'masks', split, f'{stem}.png')
    where = f'{path}/images/10k/{split}/*.jpg'
    return Labelled(_matched(images, label_of, where), _file_reader(), 19, 255,
                    CITYSCAPES_CLASSES)
  if format == 'waymo_v1':
    return Labelled(_waymo_items(path), _read_waymo, len(WAYMO_CLASSES), 0, WAYMO_CLASSES)
  raise ValueError(f'labelled format {format!r} is not one of {FORMATS}')
