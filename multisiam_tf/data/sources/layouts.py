"""Published folder layouts of image datasets: which files under the dataset's root are images.

Each layout turns (root, splits) into globs; `data.split` names the splits (comma-separated),
SODA10M's unlabeled part takes `data.soda_splits` (the paper's SODA5M: 0, 2, 4, 6, 8).
"""

import tensorflow as tf

SODA_UNLABELED = 'unlabeled'  # the data.split of SODA10M's unlabel/image_N folders


def _soda10m(root, splits, soda_splits):
  globs = []
  for split in splits:
    if split == SODA_UNLABELED:
      globs += [f'{root}/SSLAD-2D/unlabel/image_{n}/*.jpg' for n in soda_splits]
    else:
      globs.append(f'{root}/SSLAD-2D/labeled/{split}/*.jpg')
  return globs


LAYOUTS = {  # format: (globs of (root, splits, soda_splits), the layout in words, marker folder)
    'soda10m': (_soda10m, 'SSLAD-2D/labeled/{train,val,test}/*.jpg or (data.split=unlabeled) '
                'SSLAD-2D/unlabel/image_N/*.jpg for N in data.soda_splits', 'SSLAD-2D'),
    'bdd100k': (lambda root, splits, _: [f'{root}/images/100k/{s}/*.jpg' for s in splits],
                'images/100k/{train,val,test}/*.jpg', 'images/100k'),
    'cityscapes': (lambda root, splits, _: [f'{root}/leftImg8bit/{s}/*/*_leftImg8bit.png'
                                            for s in splits],
                   'leftImg8bit/{train,train_extra,val,test}/CITY/*_leftImg8bit.png',
                   'leftImg8bit'),
    'imagenet': (lambda root, splits, _: [f'{root}/{s}/*/*.JPEG' for s in splits],
                 '{train,val}/WNID/*.JPEG', None),
}


def _is_imagenet(root):
  names = tf.io.gfile.listdir(f'{root}/train') if tf.io.gfile.isdir(f'{root}/train') else []
  return bool(names) and all(n.rstrip('/').startswith('n') and n.rstrip('/')[1:].isdigit()
                             for n in names[:10])


def detect(root):
  """The layout of folder `root` when its marker folder is there, else None."""
  for name, (_, _, marker) in LAYOUTS.items():
    if marker and tf.io.gfile.isdir(f'{root}/{marker}'):
      return name
  return 'imagenet' if _is_imagenet(root) else None


def list_files(root, data_format, splits, soda_splits):
  """The image files of `splits` under `root` in layout `data_format`; ValueError when a split
  matches nothing, naming the glob and the layout expected."""
  globs, layout, _ = LAYOUTS[data_format]
  if not tf.io.gfile.isdir(root):
    raise ValueError(f'data.path: {root!r} is no folder; data.format={data_format} takes the '
                     f'dataset root, holding {layout}')
  files = []
  for pattern in globs(root, splits, soda_splits):
    matched = tf.io.gfile.glob(pattern)
    if not matched:
      raise ValueError(f'data.path: {pattern!r} matches no image: {root!r} is not in the '
                       f'{data_format} layout ({layout}) for data.split={",".join(splits)!r}')
    files += matched
  return files
