r"""Features of a folder of images through an exported SavedModel's `serving_default` signature.

  python scripts/extract_features.py --saved_model saved_models/w1/100000 \
      --images /data/frames --out runs/w1/features.npz --outputs pooled,c5

Images (jpg, jpeg, png, bmp, gif; subfolders included, sorted by path) are read as bytes and
decoded, resized and normalised inside the SavedModel, --batch_size at a time. Output:
  .npz       `names` (paths relative to --images) and one array [N, ...] per output;
  .tfrecord  one tf.train.Example per image: `name`, and per output `<o>` (float list,
             flattened) with `<o>_shape`. It is written as it goes, for folders too big for RAM.
An image that does not decode is skipped with a warning naming it; the end counts them.
"""

import io
import os

from absl import app
from absl import logging
from absl.flags import argparse_flags
import numpy as np
import tensorflow as tf

from multisiam_tf import progress as progress_lib
from multisiam_tf.data.sources import files as source_files

# The SavedModel decodes with tf.io.decode_image, which reads these two as well.
EXTENSIONS = source_files.IMAGE_EXTENSIONS + ('.bmp', '.gif')


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--saved_model', required=True, help='a <name>/<version> export folder')
  parser.add_argument('--images', required=True, help='folder of images')
  parser.add_argument('--out', required=True, help='.npz or .tfrecord file')
  parser.add_argument('--outputs', default='pooled', help='comma-separated: pooled,c2,c3,c4,c5')
  parser.add_argument('--batch_size', type=int, default=32)
  args = parser.parse_args(argv[1:])
  if not args.out.endswith(('.npz', '.tfrecord')):
    parser.error('--out must end in .npz or .tfrecord')
  return args


def list_images(folder):
  paths = [p for p in source_files.walk(folder) if p.lower().endswith(EXTENSIONS)]
  if not paths:
    raise FileNotFoundError(f'no {"/".join(EXTENSIONS)} images under {folder}')
  return sorted(paths)


def run_batch(signature, encoded, paths, outputs):
  """({output: array}, paths) of the images that decode; a bad file makes its batch go one by one."""
  try:
    result = signature(image_bytes=tf.constant(encoded))
    return {o: result[o].numpy() for o in outputs}, paths
  except tf.errors.InvalidArgumentError:
    kept, arrays = [], {o: [] for o in outputs}
    for data, path in zip(encoded, paths):
      try:
        result = signature(image_bytes=tf.constant([data]))
      except tf.errors.InvalidArgumentError:
        logging.warning('skipping %s: not a decodable image', path)
        continue
      kept.append(path)
      for o in outputs:
        arrays[o].append(result[o].numpy())
    return {o: np.concatenate(a) if a else None for o, a in arrays.items()}, kept


def read(path):
  with tf.io.gfile.GFile(path, 'rb') as f:
    return f.read()


def example(name, features):
  feature = {'name': tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()]))}
  for o, value in features.items():
    feature[o] = tf.train.Feature(float_list=tf.train.FloatList(value=value.ravel()))
    feature[o + '_shape'] = tf.train.Feature(int64_list=tf.train.Int64List(value=value.shape))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _extract(signature, paths, args, outputs, writer):
  """(names kept, {output: [arrays]}): each batch's features, written to `writer` if given."""
  names, arrays = [], {o: [] for o in outputs}
  progress = progress_lib.bar(len(paths), unit_name='image')
  for start in range(0, len(paths), args.batch_size):
    batch = paths[start:start + args.batch_size]
    features, kept = run_batch(signature, [read(p) for p in batch], batch, outputs)
    kept = [os.path.relpath(p, args.images) for p in kept]
    if writer:
      for i, name in enumerate(kept):
        writer.write(example(name, {o: features[o][i] for o in outputs}).SerializeToString())
    elif kept:
      for o in outputs:
        arrays[o].append(features[o])
    names += kept
    progress.add(len(batch))
  return names, arrays


def main(args):
  outputs = args.outputs.split(',')
  signature = tf.saved_model.load(args.saved_model).signatures['serving_default']
  unknown = set(outputs) - set(signature.structured_outputs)
  if unknown:
    raise ValueError(f'--outputs {sorted(unknown)} not in {sorted(signature.structured_outputs)}')
  paths = list_images(args.images)
  tf.io.gfile.makedirs(os.path.dirname(args.out) or '.')
  writer = tf.io.TFRecordWriter(args.out) if args.out.endswith('.tfrecord') else None
  try:
    names, arrays = _extract(signature, paths, args, outputs, writer)
  finally:
    if writer:
      writer.close()
  if not names:
    if writer:
      tf.io.gfile.remove(args.out)  # no file of zero images left behind
    raise RuntimeError(f'none of the {len(paths)} images under {args.images} decoded')
  if not writer:
    buffer = io.BytesIO()  # zipfile seeks back, which a GFile being written cannot
    np.savez(buffer, names=np.array(names), **{o: np.concatenate(arrays[o]) for o in outputs})
    with tf.io.gfile.GFile(args.out, 'wb') as f:
      f.write(buffer.getvalue())
  skipped = len(paths) - len(names)
  print(f'{len(names)} images -> {args.out}' + (f' ({skipped} skipped)' if skipped else ''))


if __name__ == '__main__':
  app.run(main, flags_parser=parse)
