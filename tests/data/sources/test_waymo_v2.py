"""Waymo v2 camera_image parquet files, written here with pyarrow, streamed by row group."""

import pytest

from multisiam_tf.data import sources
from multisiam_tf.data.sources import waymo_v2
from sources_testlib import encode, read_all, rgb

pa = pytest.importorskip('pyarrow', reason='pyarrow is the optional extra of data.format='
                         'waymo_v2 (make waymo-v2)')
pq = pytest.importorskip('pyarrow.parquet', reason='pyarrow is the optional extra of '
                         'data.format=waymo_v2 (make waymo-v2)')


def _write_component(path, rows, image_column='[CameraImageComponent].image'):
  """rows: [(camera id, JPEG bytes)], written 2 rows to a row group as Waymo v2 lays them out."""
  table = pa.table({
      'key.segment_context_name': ['segment_0'] * len(rows),
      'key.frame_timestamp_micros': pa.array(range(len(rows)), pa.int64()),
      'key.camera_name': pa.array([camera for camera, _ in rows], pa.int8()),
      image_column: pa.array([jpeg for _, jpeg in rows], pa.binary()),
  })
  path.parent.mkdir(parents=True, exist_ok=True)
  pq.write_table(table, str(path), row_group_size=2)
  return str(path)


def test_rows_of_the_selected_cameras_are_read_across_row_groups(tmp_path):
  jpegs = [encode(rgb(seed=i)) for i in range(5)]
  cameras = [1, 2, 1, 5, 3]
  path = _write_component(tmp_path / 'training' / 'camera_image' / 'segment_0.parquet',
                          list(zip(cameras, jpegs)))
  assert pq.ParquetFile(path).num_row_groups == 3

  inputs = sources.list_inputs(str(tmp_path / 'training' / 'camera_image'),
                               cameras=('FRONT', 'SIDE_RIGHT'))

  assert inputs.format == 'waymo_v2'
  assert read_all(inputs) == [(f'{path}:0:FRONT', jpegs[0], ''), (f'{path}:2:FRONT', jpegs[2], ''),
                              (f'{path}:3:SIDE_RIGHT', jpegs[3], '')]
  assert sources.count_inputs(inputs) == 3


def test_an_empty_image_is_reported_by_row(tmp_path):
  path = _write_component(tmp_path / 'a.parquet', [(1, b'')])
  assert read_all(sources.list_inputs(path)) == [
      (f'{path}:0:FRONT', b'', "no image bytes in column '[CameraImageComponent].image'")]


def test_a_parquet_file_of_another_component_is_refused_naming_the_column(tmp_path):
  path = _write_component(tmp_path / 'lidar.parquet', [(1, b'x')], image_column='[Lidar].range')
  with pytest.raises(ValueError, match=f"{path}: no column '\\[CameraImageComponent\\].image'"):
    sources.list_inputs(path, 'waymo_v2')
  with pytest.raises(ValueError, match='data.format=waymo_v2'):
    sources.list_inputs(str(tmp_path), 'folder')
  assert waymo_v2.IMAGE_COLUMN == '[CameraImageComponent].image'
