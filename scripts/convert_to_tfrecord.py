r"""Converts any training source to sharded TFRecords, for fast reading from object storage.

  python scripts/convert_to_tfrecord.py --data.path='/data/waymo/training/*.tfrecord' \
      --data.format=waymo_v1 --out /data/waymo_jpegs --name train
  python scripts/pretrain.py --config configs/multisiam_waymo.py \
      --config.data.path='/data/waymo_jpegs/train.tfrecord-*' --config.data.format=tfrecord

`--data.*` are the config's data fields (path, format, split, soda_splits, cameras,
skip_corrupt). Each example holds `image/encoded` and `image/source_id` (the source's key:
file, record, camera). Killed and rerun with the same arguments, it keeps the finished shards
and redoes the partial one (multisiam_tf/data/convert.py).
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from multisiam_tf import cli
from multisiam_tf import config as config_lib
from multisiam_tf.data import convert
from multisiam_tf.data import sources

_DATA = config_flags.DEFINE_config_dict(
    'data', config_lib.defaults().data,
    'The source, as the config\'s data fields; set them with --data.FIELD=VALUE:\n'
    + config_lib.fields_help('data.'))
_OUT = flags.DEFINE_string('out', None, 'Folder for the shards.', required=True)
_NAME = flags.DEFINE_string('name', 'train', 'Shard name prefix: NAME.tfrecord-K-of-N.')
_FILES_PER_SHARD = flags.DEFINE_integer(
    'files_per_shard', 0, 'Input files per shard; 0: 1000 image files, or 1 record file (a Waymo '
    'segment, a parquet file).', lower_bound=0)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  data = _DATA.value
  inputs = sources.from_config(data)
  per_shard = _FILES_PER_SHARD.value or (1000 if inputs.format == 'folder' else 1)
  convert.convert(inputs, _OUT.value, _NAME.value, per_shard, skip_corrupt=data.skip_corrupt,
                  min_image_size=data.min_image_size)


if __name__ == '__main__':
  cli.run(main)
