"""Counting a source's examples without reading images, and the count cached in the workdir."""

import json

import pytest

from multisiam_tf import config as config_lib
from multisiam_tf.data import sources
from multisiam_tf.data.sources import files as files_lib
from sources_testlib import encode, example, frame, rgb, write, write_records


def _data(path, **fields):
  data = config_lib.defaults().data
  data.update(path=str(path), num_examples=0, **fields)
  return data


def test_counts_of_files_records_and_frames_times_cameras(tmp_path):
  jpeg = encode(rgb())
  for i in range(3):
    write(tmp_path / 'images' / f'{i}.jpg', jpeg)
  write_records(tmp_path / 'ex' / 'a.tfrecord', [example(**{'image/encoded': jpeg})] * 4)
  write_records(tmp_path / 'ex' / 'b.tfrecord', [])
  write_records(tmp_path / 'waymo' / 's.tfrecord', [frame({c: jpeg for c in range(1, 6)})] * 2)
  assert sources.count_examples(_data(tmp_path / 'images')) == 3
  assert sources.count_examples(_data(tmp_path / 'ex')) == 4
  assert sources.count_examples(_data(tmp_path / 'waymo')) == 10
  assert sources.count_examples(_data(tmp_path / 'waymo', cameras=('FRONT', 'SIDE_LEFT'))) == 4


def test_record_offsets_walk_the_headers_and_a_truncated_file_is_named(tmp_path):
  records = [b'a' * 5, b'', b'b' * 300]
  path = write_records(tmp_path / 'x.tfrecord', records)
  offsets = files_lib.record_offsets(path)
  assert offsets == [0, 16 + 5, 16 + 5 + 16]  # 12 header + data + 4 crc each
  assert [files_lib.read_record(path, o) for o in offsets] == records
  with open(path, 'rb') as f:
    cut = write(tmp_path / 'cut.tfrecord', f.read()[:-10])
  with pytest.raises(ValueError, match=f'{cut}: truncated TFRecord: record 2 at byte 37'):
    files_lib.record_offsets(cut)


def test_num_examples_counts_once_per_source_and_keeps_a_given_value(tmp_path):
  images, workdir = tmp_path / 'images', tmp_path / 'run'
  for i in range(2):
    write(images / f'{i}.jpg', encode(rgb()))
  data = _data(images)
  assert sources.num_examples(data, str(workdir)) == 2
  with open(workdir / 'num_examples.json') as f:
    cached = json.load(f)
  assert cached['num_examples'] == 2 and cached['source']['path'] == str(images)

  write(images / '2.jpg', encode(rgb()))  # a restart on the same source does not recount
  assert sources.num_examples(data, str(workdir)) == 2
  data.split = 'val'  # any field the count depends on changes the source: counted again
  assert sources.num_examples(data, str(workdir)) == 3
  data.num_examples = 7
  assert sources.num_examples(data, str(workdir)) == 7
