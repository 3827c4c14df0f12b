"""An image dataset prepared by TensorFlow Datasets under a data_dir, read as its TFRecord shards.

tensorflow-datasets is an optional extra, used only to read the dataset's metadata: which shard
files hold the split, which feature is the image, how many examples there are.
"""

from typing import NamedTuple


class Prepared(NamedTuple):
  files: tuple  # the split's TFRecord shards
  image_key: str  # the Image feature, the key of its encoded bytes in each tf.train.Example
  num_examples: int


def _tfds():
  try:
    import tensorflow_datasets  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError('data.format=tfds needs tensorflow-datasets, an optional extra: '
                      'pip install tensorflow-datasets') from error
  return tensorflow_datasets


def is_prepared(folder):
  """Whether `folder` is a prepared dataset's version folder (data_dir/name/version)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.exists(f'{folder}/dataset_info.json')


def prepared(folder, splits):
  """The shards, image feature and size of `splits` of the dataset prepared in `folder`."""
  tfds = _tfds()
  if not is_prepared(folder):
    raise ValueError(f'data.path: {folder!r} is no prepared TFDS dataset: expected '
                     'DATA_DIR/NAME/VERSION with dataset_info.json in it')
  info = tfds.builder_from_directory(folder).info
  images = [k for k, v in info.features.items() if isinstance(v, tfds.features.Image)]
  if not images:
    raise ValueError(f'{folder}: the dataset has no top-level Image feature '
                     f'(features: {list(info.features)})')
  if info.file_format.value != 'tfrecord':
    raise ValueError(f'{folder}: shards are {info.file_format.value}; only tfrecord is read')
  files, count = [], 0
  for split in splits:
    if split not in info.splits:
      raise ValueError(f'data.split: {folder!r} has no split {split!r}; it has '
                       f'{sorted(info.splits)}')
    files += [str(f) for f in info.splits[split].filepaths]
    count += info.splits[split].num_examples
  return Prepared(tuple(files), 'image' if 'image' in images else images[0], count)
