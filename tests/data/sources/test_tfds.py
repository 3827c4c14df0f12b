"""A TFDS dataset prepared here (a tiny builder), read as its TFRecord shards."""

import numpy as np
import pytest

from multisiam_tf import config as config_lib
from multisiam_tf.data import sources
from multisiam_tf.data import views
from sources_testlib import read_all, rgb

tfds = pytest.importorskip('tensorflow_datasets', reason='tensorflow-datasets is the optional '
                           'extra of data.format=tfds (make tfds)')


def _images(split):
  count = {'train': 3, 'test': 2}[split]
  return [rgb(12, 16, seed=100 * (split == 'test') + i) for i in range(count)]


class TinyScenes(tfds.core.GeneratorBasedBuilder):
  """Five 12x16 PNGs with a label: 3 train, 2 test."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'label': tfds.features.ClassLabel(num_classes=2),
        'image': tfds.features.Image(shape=(12, 16, 3), encoding_format='png')}))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in ('train', 'test')}

  def _generate_examples(self, split):
    for i, image in enumerate(_images(split)):
      yield f'{split}{i}', {'image': image, 'label': i % 2}


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  builder = TinyScenes(data_dir=str(tmp_path_factory.mktemp('tfds')))
  builder.download_and_prepare()
  return str(builder.data_path)


def test_a_prepared_split_reads_as_its_shards_with_the_image_feature(prepared):
  inputs = sources.list_inputs(prepared, 'tfds', split='test')
  assert inputs.format == 'tfrecord' and inputs.image_key == 'image'
  assert all('-test.tfrecord' in f for f in inputs.files)
  decoded = sorted((views.decode_rgb(e).numpy() for _, e, p in read_all(inputs) if p == ''),
                   key=lambda a: a.tobytes())
  expected = sorted(_images('test'), key=lambda a: a.tobytes())
  assert len(decoded) == 2 and all(np.array_equal(a, b) for a, b in zip(decoded, expected))


def test_auto_finds_it_and_counts_come_from_the_metadata(prepared):
  assert sources.list_inputs(prepared).files == sources.list_inputs(prepared, 'tfds').files
  data = config_lib.defaults().data
  data.update(path=prepared, format='tfds', split='train,test')
  assert sources.count_examples(data) == 5


def test_a_split_it_lacks_is_named(prepared):
  with pytest.raises(ValueError, match="has no split 'validation'; it has \\['test', 'train'\\]"):
    sources.list_inputs(prepared, 'tfds', split='validation')
