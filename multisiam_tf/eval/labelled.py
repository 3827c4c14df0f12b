"""Labelled image folders: DIR/images/NAME.(png|jpg) with DIR/labels/NAME.png (class id per pixel).

The layout of the synthetic scenes (`scripts/make_demo_data.py`) and of CamVid; an optional
DIR/classes.txt names the classes, one a line, in id order.
"""

import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def image_paths(folder):
  """Sorted paths of the PNG and JPEG files in folder."""
  return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
          if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]


def pairs(folder):
  """Sorted (image path, label path) of every image with a label of the same name."""
  image_dir, label_dir = os.path.join(folder, 'images'), os.path.join(folder, 'labels')
  if not os.path.isdir(image_dir) or not os.path.isdir(label_dir):
    raise FileNotFoundError(f'{folder} needs images/ and labels/ subfolders')
  labels = {os.path.splitext(n)[0]: n for n in os.listdir(label_dir) if n.endswith('.png')}
  found = []
  for path in image_paths(image_dir):
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in labels:
      found.append((path, os.path.join(label_dir, labels[stem])))
  if not found:
    raise FileNotFoundError(f'no image in {image_dir} has a label of the same name in {label_dir}')
  return found


def read_image(path, size=None):
  """uint8 [H, W, 3]; resized bilinearly to size (H, W) when given."""
  image = Image.open(path).convert('RGB')
  if size is not None:
    image = image.resize((size[1], size[0]), Image.BILINEAR)
  return np.asarray(image)


def read_label(path, size=None):
  """uint8 [H, W] class ids; resized with nearest neighbour (ids must not blend)."""
  label = Image.open(path)
  if label.mode not in ('L', 'P'):
    raise ValueError(f'{path}: a label must be a one-channel PNG of class ids, not {label.mode}')
  if size is not None:
    label = label.resize((size[1], size[0]), Image.NEAREST)
  return np.asarray(label, dtype=np.uint8)


def check_sizes(found):
  """Raises ValueError naming the first (image path, label path) whose sizes differ: a label
  resized to its image would silently misplace every class."""
  for image_path, label_path in found:
    with Image.open(image_path) as image, Image.open(label_path) as label:  # headers only
      if image.size != label.size:
        raise ValueError(f'{label_path} is {label.size[0]}x{label.size[1]} (WxH) but its image '
                         f'{image_path} is {image.size[0]}x{image.size[1]}')


def load(folder, size, limit=None):
  """(images uint8 [N, H, W, 3], labels uint8 [N, H, W]) of the first `limit` pairs, at size."""
  found = pairs(folder)[:limit]
  images = np.stack([read_image(image, size) for image, _ in found])
  labels = np.stack([read_label(label, size) for _, label in found])
  return images, labels


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


def class_names(folder, num_classes):
  """Names from DIR/classes.txt when present, else the ids as strings."""
  path = os.path.join(folder, 'classes.txt')
  names = []
  if os.path.exists(path):
    with open(path) as f:
      names = [line.strip() for line in f if line.strip()]
  return [names[i] if i < len(names) else str(i) for i in range(num_classes)]


def split(images, labels, train_fraction):
  """Contiguous split in sorted order, so neighbouring video frames stay on one side."""
  n_train = int(round(len(images) * train_fraction))
  if not 0 < n_train < len(images):
    raise ValueError(f'train_fraction {train_fraction} of {len(images)} images empties a split')
  return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])
