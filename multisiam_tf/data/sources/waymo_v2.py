"""Waymo Open Dataset v2: parquet `camera_image` component files, streamed a row group at a time.

pyarrow is an optional extra (`make waymo-v2`); only this format imports it.
"""

import tensorflow as tf

from multisiam_tf.data.sources import waymo_v1

IMAGE_COLUMN = '[CameraImageComponent].image'
CAMERA_COLUMN = 'key.camera_name'


def _pyarrow():
  """(pyarrow.fs, pyarrow.parquet), or ImportError naming the extra."""
  try:
    from pyarrow import fs  # pylint: disable=import-outside-toplevel
    from pyarrow import parquet  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError('data.format=waymo_v2 reads parquet files with pyarrow, an optional extra: '
                      "make waymo-v2 (or pip install -e '.[waymo-v2]')") from error
  return fs, parquet


def open_file(path):
  """A pyarrow ParquetFile of a camera_image file; ValueError naming a missing column."""
  fs, pq = _pyarrow()
  if '://' in path:  # object storage through pyarrow's own file systems (gs://, s3://)
    filesystem, inner = fs.FileSystem.from_uri(path)
    parquet = pq.ParquetFile(filesystem.open_input_file(inner))
  else:
    parquet = pq.ParquetFile(path)
  missing = [c for c in (CAMERA_COLUMN, IMAGE_COLUMN) if c not in parquet.schema_arrow.names]
  if missing:
    raise ValueError(f'{path}: no column {missing[0]!r}: not a Waymo v2 camera_image component '
                     f'file (its columns: {parquet.schema_arrow.names[:8]})')
  return parquet


def rows(path, camera_ids):
  """(key 'file:row:CAMERA', JPEG bytes, problem) of the rows of the wanted cameras."""
  parquet, row = open_file(path), 0
  for group in range(parquet.num_row_groups):
    table = parquet.read_row_group(group, columns=[CAMERA_COLUMN, IMAGE_COLUMN])
    for camera, image in zip(*(table.column(c).to_pylist() for c in (CAMERA_COLUMN,
                                                                     IMAGE_COLUMN))):
      if camera in camera_ids:
        yield (f'{path}:{row}:{waymo_v1.CAMERAS[camera - 1]}', image or b'',
               '' if image else f'no image bytes in column {IMAGE_COLUMN!r}')
      row += 1


def count_rows(path, camera_ids):
  """Rows of the wanted cameras, from the camera column alone."""
  table = open_file(path).read(columns=[CAMERA_COLUMN])
  return sum(camera in camera_ids for camera in table.column(0).to_pylist())


def read_parquet(files, cameras=waymo_v1.CAMERAS):
  """A dataset of camera_image parquet file names -> ('file:row:CAMERA', JPEG bytes, problem)."""
  camera_ids = waymo_v1.camera_ids(cameras)
  _pyarrow()  # fails here, naming the extra, rather than inside a tf.data worker
  spec = (tf.TensorSpec([], tf.string),) * 3

  def file_rows(f):
    return tf.data.Dataset.from_generator(lambda path: rows(path.decode(), camera_ids),
                                          output_signature=spec, args=(f,))
  return files.interleave(file_rows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
