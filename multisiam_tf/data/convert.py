"""Any source to sharded TFRecords of tf.train.Example (`image/encoded`, `image/source_id`).

Shard k holds the images of input files k*F .. (k+1)*F - 1, so a shard is redone from its own
inputs alone: each is written under a temporary name and renamed when complete, and a rerun keeps
the finished shards and redoes the partial one. A plan file beside the shards (the inputs and F)
stops a rerun with other inputs from mixing two conversions.
"""

import json
import math
import os

from absl import logging
import tensorflow as tf

from multisiam_tf import progress as progress_lib
from multisiam_tf.data import sources
from multisiam_tf.data.sources import files as files_lib

SOURCE_ID_KEY = 'image/source_id'
PARTIAL = '.partial'


def shard_names(out, name, num_shards):
  return [os.path.join(out, f'{name}.tfrecord-{k:05d}-of-{num_shards:05d}')
          for k in range(num_shards)]


def _example(key, encoded):
  feature = {sources.TFRECORD_IMAGE_KEY: encoded, SOURCE_ID_KEY: key}
  return tf.train.Example(features=tf.train.Features(feature={
      k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v])) for k, v in feature.items()
  })).SerializeToString()


def _checked(inputs, shard_files, min_image_size):
  ds = sources.read(tf.data.Dataset.from_tensor_slices(list(shard_files)), inputs)
  return ds.map(lambda key, encoded, problem: (
      key, encoded, sources.problem(encoded, problem, min_image_size)))


def _check_plan(path, plan):
  plan = json.loads(json.dumps(plan))  # tuples as lists, as read back
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      if json.load(f) != plan:
        raise ValueError(f'{path} records another conversion (other inputs or files per shard); '
                         'convert into another folder or name, or delete it and its shards')
  else:
    with tf.io.gfile.GFile(path, 'w') as f:
      json.dump(plan, f, indent=1)


def convert(inputs, out, name='train', files_per_shard=1, skip_corrupt=False, min_image_size=8):
  """Writes `inputs` (sources.Inputs) as shards `out/name.tfrecord-K-of-N`; returns their paths.

  A bad input (sources.problem) raises ValueError naming its key, or with skip_corrupt is
  logged and counted.
  """
  num_shards = math.ceil(len(inputs.files) / files_per_shard)
  shards = shard_names(out, name, num_shards)
  tf.io.gfile.makedirs(out)
  _check_plan(os.path.join(out, f'{name}.plan.json'),
              {'inputs': inputs._asdict(), 'files_per_shard': files_per_shard})
  done = [k for k, shard in enumerate(shards) if tf.io.gfile.exists(shard)]
  written = sum(len(files_lib.record_offsets(shards[k])) for k in done)
  progress = progress_lib.bar(sources.count_inputs(inputs), unit_name='image')
  progress.update(written)
  skipped = 0
  for k, shard in enumerate(shards):
    if k in done:
      continue
    shard_files = inputs.files[k * files_per_shard:(k + 1) * files_per_shard]
    with tf.io.TFRecordWriter(shard + PARTIAL) as writer:
      for key, encoded, problem in _checked(inputs, shard_files, min_image_size).as_numpy_iterator():
        if problem:
          if not skip_corrupt:
            raise ValueError(f'cannot convert {key.decode()}: {problem.decode()} '
                             '(data.skip_corrupt=True skips such inputs)')
          skipped += 1
          logging.warning('skipping %s: %s (%d skipped so far)', key.decode(), problem.decode(),
                          skipped)
        else:
          writer.write(_example(key, encoded))
          written += 1
        progress.update(written)
    tf.io.gfile.rename(shard + PARTIAL, shard, overwrite=True)  # complete, or absent after a kill
  logging.info('%d shards in %s: %d images written, %d skipped', num_shards, out, written,
               skipped)
  return shards
