"""How many training images a source holds: `data.num_examples` when given, else counted once.

Counting reads no image: files are counted, TFRecords by their record headers, Waymo v1 as
frames x selected cameras, Waymo v2 from the camera column, TFDS from its metadata. The count is
cached in the workdir, keyed by the data fields it depends on, so a restart does not recount.
"""

import json
import os
import socket

import tensorflow as tf

from multisiam_tf.data.sources import files as files_lib
from multisiam_tf.data.sources import listing
from multisiam_tf.data.sources import tfds
from multisiam_tf.data.sources import waymo_v1
from multisiam_tf.data.sources import waymo_v2

CACHE = 'num_examples.json'
_KEYED_BY = ('path', 'format', 'split', 'soda_splits', 'cameras')


def count_inputs(inputs):
  """Examples in sources.Inputs (Waymo v1: every frame is taken to hold all selected cameras)."""
  if inputs.format == 'folder':
    return len(inputs.files)
  if inputs.format == 'waymo_v2':
    ids = waymo_v1.camera_ids(inputs.cameras)
    return sum(waymo_v2.count_rows(f, ids) for f in inputs.files)
  records = sum(len(files_lib.record_offsets(f)) for f in inputs.files)
  return records * len(inputs.cameras) if inputs.format == 'waymo_v1' else records


def count_examples(data):
  """Examples of the source named by the `data` part of a config, counted (not num_examples)."""
  if data.format == 'tfds':
    return tfds.prepared(data.path, [s.strip() for s in data.split.split(',')]).num_examples
  return count_inputs(listing.from_config(data))


def num_examples(data, workdir):
  """data.num_examples, or when it is 0 the source's count, cached in workdir/num_examples.json."""
  if data.num_examples:
    return data.num_examples
  key = {name: _plain(data[name]) for name in _KEYED_BY}
  path = os.path.join(workdir, CACHE)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      cached = json.load(f)
    if cached.get('source') == key:
      return cached['num_examples']
  count = count_examples(data)
  tf.io.gfile.makedirs(workdir)
  aside = f'{path}.{socket.gethostname()}.{os.getpid()}.tmp'  # every worker writes its own
  with tf.io.gfile.GFile(aside, 'w') as f:
    json.dump({'source': key, 'num_examples': count}, f, indent=2)
  tf.io.gfile.rename(aside, path, overwrite=True)  # whole or absent after a kill
  return count


def _plain(value):
  return list(value) if isinstance(value, (tuple, list)) else value
