"""Published folder layouts, as fixture trees of tiny real images: what each split selects."""

import pytest

from multisiam_tf.data import sources
from sources_testlib import encode, rgb, write


def _tree(root, names):
  """Writes a tiny JPEG or PNG at each relative name; returns {name: absolute path}."""
  return {n: write(root / n, encode(rgb(8, 8), 'PNG' if n.endswith('.png') else 'JPEG'))
          for n in names}


SODA = ['SSLAD-2D/labeled/train/HT_TRAIN_000001_SH_000.jpg',
        'SSLAD-2D/labeled/val/HT_VAL_000001_SH_000.jpg',
        'SSLAD-2D/labeled/test/HT_TEST_000001_SH_000.jpg'] + [
            f'SSLAD-2D/unlabel/image_{n}/HT_{n}_00000{i}.jpg' for n in range(10) for i in range(2)]
BDD = ['images/100k/train/0a0a0b1a-7c39d841.jpg', 'images/100k/train/0a0b16e2-93f8c456.jpg',
       'images/100k/val/b1c66a42-6f7d68ca.jpg', 'images/10k/train/0a0a0b1a-7c39d841.jpg',
       'labels/sem_seg/masks/train/0a0a0b1a-7c39d841.png']
CITYSCAPES = ['leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png',
              'leftImg8bit/train/bremen/bremen_000000_000019_leftImg8bit.png',
              'leftImg8bit/train_extra/augsburg/augsburg_000000_000000_leftImg8bit.png',
              'leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png',
              'gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png',
              'gtFine/train/aachen/aachen_000000_000019_gtFine_color.png']
IMAGENET = ['train/n01440764/n01440764_10026.JPEG', 'train/n01443537/n01443537_1000.JPEG',
            'val/n01440764/ILSVRC2012_val_00000293.JPEG', 'LOC_synset_mapping.txt.jpg']


@pytest.mark.parametrize('data_format, names, split, expected', [
    ('soda10m', SODA, 'train', SODA[:1]),
    ('soda10m', SODA, 'train,val', SODA[:2]),
    ('soda10m', SODA, 'unlabeled', SODA[3:]),
    ('bdd100k', BDD, 'train', BDD[:2]),
    ('bdd100k', BDD, 'val', BDD[2:3]),
    ('cityscapes', CITYSCAPES, 'train', CITYSCAPES[:2]),
    ('cityscapes', CITYSCAPES, 'train,train_extra', CITYSCAPES[:3]),
    ('imagenet', IMAGENET, 'train', IMAGENET[:2]),
])
def test_each_split_lists_its_images_only_and_auto_finds_the_layout(tmp_path, data_format, names,
                                                                    split, expected):
  paths = _tree(tmp_path, names)
  for named in (data_format, 'auto'):
    inputs = sources.list_inputs(str(tmp_path), named, split=split)
    assert inputs == sources.Inputs(tuple(sorted(paths[n] for n in expected)), 'folder'), named


def test_soda5m_is_the_even_unlabeled_splits(tmp_path):
  paths = _tree(tmp_path, SODA)
  inputs = sources.list_inputs(str(tmp_path), 'soda10m', split='unlabeled', soda_splits=(0, 2))
  assert inputs.files == tuple(sorted(p for n, p in paths.items()
                                      if '/image_0/' in n or '/image_2/' in n))


@pytest.mark.parametrize('data_format, split, message', [
    ('bdd100k', 'train', "images/100k/train/\\*.jpg' matches no image: .* is not in the bdd100k "
                         'layout'),
    ('soda10m', 'unlabeled', "SSLAD-2D/unlabel/image_0/\\*.jpg' matches no image"),
    ('cityscapes', 'test', "leftImg8bit/test/\\*/\\*_leftImg8bit.png' matches no image"),
])
def test_a_path_in_another_layout_names_the_layout_expected(tmp_path, data_format, split,
                                                            message):
  _tree(tmp_path, IMAGENET)
  with pytest.raises(ValueError, match=message):
    sources.list_inputs(str(tmp_path), data_format, split=split)


def test_a_layout_takes_one_root_folder(tmp_path):
  _tree(tmp_path, BDD)
  with pytest.raises(ValueError, match='takes one dataset root folder'):
    sources.list_inputs(f'{tmp_path}/images/*', 'bdd100k')
  with pytest.raises(ValueError, match='is no folder'):
    sources.list_inputs(str(tmp_path / 'missing'), 'bdd100k')
