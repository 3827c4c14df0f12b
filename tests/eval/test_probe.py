"""The dense linear probe: scores against a numpy reference, training, and whole runs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from multisiam_tf.eval import labelled
from multisiam_tf.eval import probe
from multisiam_tf.export import keras_weights
from multisiam_tf.export import serving
from eval_testlib import reference_scores

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts',
                      'probe.py')


@pytest.mark.parametrize('seed', range(3))
def test_scores_match_numpy_reference(seed):
  rng = np.random.default_rng(seed)
  num_classes, ignore_index = 7, 255
  # Classes 0..4 appear; 5 is only predicted (IoU 0, counted); 6 never appears (left out);
  # 7 and 9 are >= num_classes and 255 is the ignore value: all three are skipped.
  labels = rng.choice([0, 1, 2, 3, 4, 7, 9, 255], size=(3, 17, 23)).astype(np.uint8)
  predictions = rng.integers(0, 6, size=labels.shape)
  result = probe.scores(probe.confusion_matrix(labels, predictions, num_classes, ignore_index))
  iou, miou, accuracy = reference_scores(labels, predictions, num_classes, ignore_index)
  np.testing.assert_allclose([np.nan if v is None else v for v in result['per_class_iou']], iou)
  assert result['per_class_iou'][5] == 0.0 and result['per_class_iou'][6] is None
  np.testing.assert_allclose(result['miou'], miou)
  np.testing.assert_allclose(result['pixel_accuracy'], accuracy)


def test_ignore_index_below_num_classes_is_ignored():
  labels = np.array([[0, 1, 1, 2]])
  predictions = np.array([[2, 1, 0, 2]])
  confusion = probe.confusion_matrix(labels, predictions, num_classes=3, ignore_index=0)
  assert confusion.sum() == 3
  result = probe.scores(confusion, ignore_index=0)
  # Class 0 is predicted once, on a "1" (a miss for class 1), but names no class: no IoU.
  assert result['per_class_iou'] == [None, 0.5, 1.0] and result['miou'] == 0.75
  assert result['pixel_accuracy'] == pytest.approx(2 / 3)


def test_extract_scales_into_float16_and_concatenates_c4():
  rng = np.random.default_rng(0)
  c4 = rng.normal(0, 3e5, (5, 4, 6, 3)).astype(np.float32)  # beyond float16's 65504
  c5 = rng.normal(0, 3e5, (5, 2, 3, 2)).astype(np.float32)
  # Each image's first pixel holds its index, so the feature function returns its own rows.
  rows = lambda images: tf.cast(images[:, 0, 0, 0], tf.int32)
  features = lambda images: {'c4': tf.gather(c4, rows(images)), 'c5': tf.gather(c5, rows(images))}
  images = np.zeros((5, 8, 8, 3), np.uint8)
  images[:, 0, 0, 0] = np.arange(5)
  maps, scale = probe.extract(features, images, use_c4=True, batch_size=3)
  assert maps.dtype == np.float16 and maps.shape == (5, 4, 6, 5)
  assert np.log2(scale) % 1 == 0 and 0.5 < np.abs(maps[:3]).max() <= 1.0  # first batch
  maps = maps.astype(np.float32) * scale
  np.testing.assert_allclose(maps[..., :3], c4, rtol=1e-3)
  np.testing.assert_allclose(maps[..., 3:], tf.image.resize(c5, (4, 6)), rtol=1e-3,
                             atol=1e-3 * scale)
  again, same_scale = probe.extract(features, images, batch_size=2, scale=scale)
  assert same_scale == scale
  np.testing.assert_allclose(again.astype(np.float32) * scale, c5, rtol=1e-3)


def test_classifier_never_learns_from_ignored_pixels():
  # Constant features: only the bias can learn. 5/8 of the pixels say class 0, the ignore value,
  # and 1/8 say 5, out of range; only the 1/4 saying 2 count, so every prediction must be 2.
  maps = np.ones((4, 2, 2, 8), np.float16)
  labels = np.zeros((4, 8, 8), np.uint8)
  labels[:, :2] = 2
  labels[:, 2, :] = 5
  predict, loss = probe.train_classifier(maps, labels, num_classes=3, ignore_index=0, lr=0.1,
                                         epochs=20, batch_size=2)
  assert np.all(predict(maps) == 2)
  assert loss < 0.1


def test_probe_learns_synthetic_scenes(scenes, tiny_features):
  """A random-init tiny ResNet's C5 (2x3 cells) supports a probe well above guessing.

  Guessing levels on the same val split: the most frequent training class everywhere (its IoU
  over the classes seen, ~0.02 here) and uniform random classes (~1 / (K + 1), ~0.06 for K = 9).
  Colours and textures differ by class in these scenes, and random conv features keep colour,
  so the probe reaches ~0.2; a probe that learned nothing (or misaligned labels) stays at the
  guessing levels, below the bound of twice the larger one.
  """
  images, labels = labelled.load(scenes.folder, scenes.size)
  assert images.shape == (scenes.num, *scenes.size, 3) and labels.max() < 9
  train, val = labelled.split(images, labels, 2 / 3)
  result = probe.run(tiny_features, train, val, num_classes=9, epochs=30, lr=1e-2)
  guesses = np.random.default_rng(0).integers(0, 9, val[1].shape)
  uniform = probe.scores(probe.confusion_matrix(val[1], guesses, 9))['miou']
  majority = result['majority_class']
  assert result['feature_shape'] == [2, 3, 128]
  assert result['miou'] > 2 * max(majority['miou'], uniform), (result, uniform)
  assert result['pixel_accuracy'] > majority['pixel_accuracy'] + 0.15


def test_probe_runs_on_camvid_frames(camvid, tiny_features):
  """8 real frames, C4 + C5; CamVid's unlabelled 11 is out of range for the loss: it is masked."""
  images, labels = labelled.load(camvid, (96, 128), limit=8)
  assert (labels == 11).any()
  train, val = labelled.split(images, labels, 0.5)
  result = probe.run(tiny_features, train, val, num_classes=11, use_c4=True, epochs=10)
  assert result['feature_shape'] == [6, 8, 64 + 128] and len(result['per_class_iou']) == 11
  assert result['majority_class']['miou'] < result['miou'] <= 1.0


@pytest.fixture(scope='module')
def saved_model(tmp_path_factory, tiny_backbone):
  """The tiny ResNet exported as TF Serving gets it."""
  return serving.export_saved_model(tiny_backbone, str(tmp_path_factory.mktemp('export') / '1'),
                                    image_size=64)


def test_saved_model_features_match_keras(saved_model, tiny_features):
  images = tf.constant(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)), tf.float32)
  loaded = probe.saved_model_features(saved_model)(images)
  for name, value in tiny_features(images).items():
    np.testing.assert_allclose(loaded[name], value, rtol=1e-4, atol=1e-4)


def test_probe_script_with_baseline(scenes, saved_model, tiny_architecture, tmp_path):
  out = tmp_path / 'probe.json'
  depth, width, output_stride = tiny_architecture
  completed = subprocess.run(
      [sys.executable, SCRIPT, '--saved_model', saved_model, '--baseline', '--depth', str(depth),
       '--width', str(width), '--output_stride', str(output_stride), '--data', scenes.folder,
       '--train_fraction', '0.75', '--limit', '8', '--num_classes', '9', '--size', '64', '96',
       '--epochs', '2', '--out', str(out)],
      capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  result = json.loads(out.read_text())
  assert result['train_images'] == 6 and result['val_images'] == 2
  assert result['class_names'][0] == 'sky' and len(result['per_class_iou']) == 9
  # Same architecture, same seed: the baseline is the SavedModel's own random init.
  assert result['baseline']['miou'] == pytest.approx(result['miou'], abs=2e-3)
  header = completed.stdout.splitlines()[0].split()
  assert header == ['pretrained', 'random', 'init'] and 'mIoU' in completed.stdout


def test_load_backbone_from_keras_weights(tiny_backbone, tiny_architecture, tmp_path):
  written, _ = keras_weights.export_keras(tiny_backbone, str(tmp_path))
  loaded, architecture = probe.load_backbone(keras_weights=written,
                                             architecture=tiny_architecture, seed=1)
  assert architecture == tiny_architecture
  for a, b in zip(loaded.weights, tiny_backbone.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
  with pytest.raises(ValueError, match='backbone.weights.h5 does not fit a ResNet-34'):
    probe.load_backbone(keras_weights=written, architecture=(34, 0.25, 32))
  with pytest.raises(ValueError, match='backbone.weights.h5 does not fit a ResNet-18 of width 0.5'):
    probe.load_backbone(keras_weights=written, architecture=(18, 0.5, 32))
