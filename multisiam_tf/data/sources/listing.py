"""`data.path` and `data.format` resolved to the input files and how to read them (Inputs).

A path is a folder (searched recursively), a glob, or comma-separated globs; a published layout
(soda10m, bdd100k, cityscapes, imagenet) or a prepared TFDS dataset is one root folder. With
`auto`, the format follows from the path where that is unambiguous; the first file of a record
format is looked into, so a file of another format fails at once, naming the format that reads it.
"""

from typing import NamedTuple

import tensorflow as tf

from multisiam_tf.data.sources import examples
from multisiam_tf.data.sources import files as files_lib
from multisiam_tf.data.sources import layouts
from multisiam_tf.data.sources import tfds
from multisiam_tf.data.sources import waymo_v1
from multisiam_tf.data.sources import waymo_v2

READ_FORMATS = ('folder', 'tfrecord', 'waymo_v1', 'waymo_v2')  # how Inputs are read
FORMATS = READ_FORMATS + tuple(layouts.LAYOUTS) + ('tfds',)  # what data.format may name
ALL_SODA_SPLITS = tuple(range(10))


class Inputs(NamedTuple):
  files: tuple  # sorted, unique paths
  format: str  # one of READ_FORMATS
  image_key: str = examples.TFRECORD_IMAGE_KEY  # tfrecord: the feature holding the image
  cameras: tuple = waymo_v1.CAMERAS  # waymo_v1, waymo_v2: the cameras read


_WANTED = {'folder': 'images (' + ', '.join(files_lib.IMAGE_EXTENSIONS) + ')',
           'tfrecord': 'TFRecord files (names containing "tfrecord")',
           'waymo_v1': 'TFRecord files (names containing "tfrecord")',
           'waymo_v2': 'parquet files (.parquet)'}
_MATCHERS = {'folder': files_lib.is_image, 'tfrecord': files_lib.is_tfrecord,
             'waymo_v1': files_lib.is_tfrecord, 'waymo_v2': files_lib.is_parquet}


def record_format(path):
  """'waymo_v1' or 'tfrecord' by the first record of TFRecord `path`; '' when it has none or
  is neither (no TFRecord, another proto)."""
  record = files_lib.first_record(path)
  if record is None:
    return ''
  if waymo_v1.is_frame(record):
    return 'waymo_v1'
  return 'tfrecord' if examples.image_keys(record) else ''


def _guess(matched):
  """The format of files of unknown format: parquet, else what the first record shows."""
  if all(files_lib.is_parquet(f) for f in matched):
    return 'waymo_v2'
  return record_format(sorted(matched)[0]) or 'tfrecord'


def _from_folder(folder, data_format):
  """Files of `data_format` under `folder`; with 'auto', images if any, else other records."""
  found = list(files_lib.walk(folder))
  names = list(READ_FORMATS) if data_format == 'auto' else [data_format]
  for name in names:
    matched = [f for f in found if _MATCHERS[name](f)]
    if matched:
      return matched, _guess(matched) if data_format == 'auto' and name != 'folder' else name
  wanted = ' and no '.join(dict.fromkeys(_WANTED[n] for n in names))
  hint = ''
  others = [f for f in found if files_lib.is_tfrecord(f) or files_lib.is_parquet(f)]
  if others:
    hint = f'; its {others[0]!r} is read by data.format={_guess(others[:1])}'
  raise ValueError(f'data.path: folder {folder!r} holds no {wanted} (searched recursively)'
                   + hint)


def _from_glob(pattern, data_format):
  """Files matching `pattern`; with 'auto', the format follows from the files."""
  matched = files_lib.glob(pattern)
  if data_format != 'auto':
    return matched, data_format
  images = [f for f in matched if files_lib.is_image(f)]
  if len(images) == len(matched):
    return matched, 'folder'
  if not images:
    return matched, _guess(matched)
  other = next(f for f in matched if not files_lib.is_image(f))
  raise ValueError(f'data.path: glob {pattern!r} matches both images ({images[0]!r}) and other '
                   f'files ({other!r}); narrow the glob or set data.format')


def _check_contents(files, data_format):
  """Fails when the input files are of another format than the one named (the first file of a
  record format is looked into; for folder, the first file not named like an image)."""
  if data_format == 'folder':
    other = next((f for f in files if not files_lib.is_image(f)), None)
    found = other and ('waymo_v2' if files_lib.is_parquet(other) else record_format(other))
    if found:
      raise ValueError(f'data.path: {other!r} is no image; data.format={found} reads it')
  elif data_format == 'waymo_v2':
    waymo_v2.open_file(files[0])
  else:
    found = record_format(files[0])
    if found and found != data_format:
      what = {'waymo_v1': 'Waymo v1 Frames', 'tfrecord': 'tf.train.Example records'}[found]
      raise ValueError(f'data.path: {files[0]!r} holds {what}, not what '
                       f'data.format={data_format} reads; set data.format={found}')
    if not found and files_lib.first_record(files[0]) is not None:
      raise ValueError(f'data.path: record 0 of {files[0]!r} is neither a tf.train.Example nor '
                       'a Waymo v1 Frame')


def _root(path, data_format):
  if ',' in path or any(c in path for c in '*?['):
    raise ValueError(f'data.path: data.format={data_format} takes one dataset root folder, not '
                     f'{path!r}')
  return path.rstrip('/')


def list_inputs(path, data_format='auto', *, split='train', soda_splits=ALL_SODA_SPLITS,
                cameras=waymo_v1.CAMERAS):
  """Resolves `data.path` and `data.format` (see FORMATS, or 'auto') to Inputs.

  `split` (comma-separated) picks the splits of a published layout or a TFDS dataset;
  `soda_splits` SODA10M's unlabeled splits; `cameras` the Waymo cameras.
  Raises ValueError naming the path when it is empty, missing, matches nothing, holds no inputs,
  mixes formats, or holds another format than the one named.
  """
  if data_format not in ('auto', *FORMATS):
    raise ValueError(f'data.format is {data_format!r}; it must be auto or one of {list(FORMATS)}')
  parts = [p.strip() for p in path.split(',') if p.strip()]
  if not parts:
    raise ValueError('data.path is empty; set it to a folder, a glob or comma-separated globs, '
                     'e.g. --config.data.path=/data/images')
  splits = [s.strip() for s in split.split(',') if s.strip()]
  cameras = tuple(waymo_v1.CAMERAS[i - 1] for i in waymo_v1.camera_ids(cameras))
  if data_format == 'auto' and len(parts) == 1 and tf.io.gfile.isdir(parts[0]):
    data_format = ('tfds' if tfds.is_prepared(parts[0])
                   else layouts.detect(parts[0]) or data_format)
  if data_format == 'tfds':
    prepared = tfds.prepared(_root(path, data_format), splits)
    return Inputs(tuple(sorted(prepared.files)), 'tfrecord', image_key=prepared.image_key)
  if data_format in layouts.LAYOUTS:
    found = layouts.list_files(_root(path, data_format), data_format, splits, soda_splits)
    return Inputs(tuple(sorted(set(found))), 'folder')
  found, formats = set(), set()
  for part in parts:
    if tf.io.gfile.isdir(part):
      matched, found_format = _from_folder(part, data_format)
    else:
      matched, found_format = _from_glob(part, data_format)
    found.update(matched)
    formats.add(found_format)
  if len(formats) > 1:
    raise ValueError(f'data.path {path!r} mixes formats {sorted(formats)}; set data.format')
  inputs = Inputs(tuple(sorted(found)), formats.pop(), cameras=cameras)
  _check_contents(inputs.files, inputs.format)
  return inputs


def from_config(data):
  """list_inputs of the `data` part of a config."""
  return list_inputs(data.path, data.format, split=data.split, soda_splits=data.soda_splits,
                     cameras=data.cameras)
