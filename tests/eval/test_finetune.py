"""Fine-tuning evaluation: augmentation geometry, schedules, scores against numpy, whole runs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from multisiam_tf.data import augment
from multisiam_tf.eval import finetune
from multisiam_tf.eval import labelled
from multisiam_tf.eval import probe
from multisiam_tf.export import keras_weights
from eval_testlib import reference_scores

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts',
                      'finetune.py')
NUM_CLASSES = 8  # the scenes' 'tree' (id 8) plays CamVid's unlabelled 11: out of range, ignored
IGNORE = 8


def _normalised(images):
  return augment.normalize(images.astype(np.float32) / 255.0).numpy()


def test_augment_at_scale_one_is_the_image_or_its_mirror():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (16, 6, 10, 3), dtype=np.uint8)
  labels = rng.integers(0, 9, (16, 6, 10), dtype=np.uint8)
  x, y = finetune.augment_batch(images, labels, tf.constant([0, 1]), (6, 10), (1.0, 1.0), 255)
  flipped = []
  for i in range(16):
    flipped.append(bool(np.any(y[i].numpy() != labels[i])))
    want_x, want_y = _normalised(images[i]), labels[i]
    if flipped[-1]:
      want_x, want_y = want_x[:, ::-1], want_y[:, ::-1]
    np.testing.assert_array_equal(y[i], want_y)
    np.testing.assert_allclose(x[i], want_x, atol=1e-5)
  assert 0 < sum(flipped) < 16


@pytest.mark.parametrize('scale', [0.5, 0.8, 1.6])
def test_augment_scales_images_and_labels_alike(scale):
  # Label 1 on a 12x16 block of a 32x48 image, 0 around it; the image is 40 * label + 60.
  labels = np.zeros((8, 32, 48), np.uint8)
  labels[:, 10:22, 16:32] = 1
  images = np.repeat((40 * labels + 60)[..., None], 3, axis=-1).astype(np.uint8)
  crop = (32, 48)
  x, y = finetune.augment_batch(images, labels, tf.constant([3, 4]), crop, (scale, scale), 255)
  x, y = x.numpy(), y.numpy()
  valid = y != 255
  # The crop shows the scaled image where it lies inside it: all of a smaller image.
  visible = min(1.0, scale ** 2)
  np.testing.assert_allclose(valid.mean(), visible, rtol=0.1)
  pixel = x[..., 0] * augment.STD[0] + augment.MEAN[0]  # back to [0, 1]
  np.testing.assert_allclose(x[~valid], 0.0, atol=1e-6)  # the mean, normalised
  # Bilinear images and nearest labels sample the same points: they disagree only on the
  # block's boundary ring.
  agree = np.abs(pixel * 255 - (40 * y + 60)) < 1.0
  assert agree[valid].mean() > 0.9
  if scale >= 1:  # the block fits into the crop whole at some positions only; compare its area
    return
  block = (y == 1).sum((1, 2))
  np.testing.assert_allclose(block, 12 * 16 * scale ** 2, rtol=0.25)


@pytest.mark.parametrize('schedule', finetune.SCHEDULES)
def test_learning_rate_schedules(schedule):
  steps = np.array([0, 10, 50, 99, 100])
  got = [float(finetune.learning_rate(schedule, 0.02, 100)(k)) for k in steps]
  fraction = steps / 100
  want = (0.02 * (1 - fraction) ** 0.9 if schedule == 'poly'
          else 0.02 * 0.5 * (1 + np.cos(np.pi * fraction)))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


@pytest.fixture(scope='module')
def splits(scenes):
  images, labels = labelled.load(scenes.folder, scenes.size)
  return labelled.split(images, labels, 2 / 3)


@pytest.fixture(scope='module')
def tuned(splits, tiny_backbone, tiny_architecture):
  """The tiny random-init ResNet fine-tuned on 16 scenes, 40 steps; the source left as it was."""
  before = [w.numpy().copy() for w in tiny_backbone.weights]
  model = finetune.build(tiny_backbone, tiny_architecture, NUM_CLASSES, head_channels=64)
  curve = finetune.fit(model, *splits[0], NUM_CLASSES, IGNORE, steps=40, lr=0.02, log_every=10)
  for a, b in zip(before, tiny_backbone.weights):
    np.testing.assert_array_equal(a, b.numpy())
  return model, curve


def test_finetuning_learns_the_scenes(splits, tuned):
  """Well above guessing: the most frequent class everywhere (~0.03 mIoU here) and uniform
  random classes (~1 / (K + 1)); measured ~0.2 after 40 steps."""
  model, curve = tuned
  train, val = splits
  assert len(curve) == 4 and curve[-1] < curve[0]
  result = finetune.score(model, train[1], val, NUM_CLASSES, IGNORE)
  guesses = np.random.default_rng(0).integers(0, NUM_CLASSES, val[1].shape)
  uniform = probe.scores(probe.confusion_matrix(val[1], guesses, NUM_CLASSES, IGNORE))['miou']
  majority = result['majority_class']
  assert result['miou'] > 2 * max(majority['miou'], uniform), (result, uniform)
  assert result['pixel_accuracy'] > majority['pixel_accuracy'] + 0.15


def test_scores_are_numpy_miou_of_the_predictions(splits, tuned):
  model, _ = tuned
  train, val = splits
  assert (val[1] == IGNORE).any()
  predictions = finetune.predict(model, val[0], batch_size=3)
  assert predictions.shape == val[1].shape
  result = finetune.score(model, train[1], val, NUM_CLASSES, IGNORE)
  iou, miou, accuracy = reference_scores(val[1], predictions, NUM_CLASSES, IGNORE)
  np.testing.assert_allclose([np.nan if v is None else v for v in result['per_class_iou']], iou)
  np.testing.assert_allclose(result['miou'], miou)
  np.testing.assert_allclose(result['pixel_accuracy'], accuracy)


def test_fcn16s_adds_c4_scores_and_bfloat16_gives_float32_logits(tiny_backbone,
                                                                 tiny_architecture):
  model = finetune.build(tiny_backbone, tiny_architecture, 5, use_c4=True, head_channels=16,
                         precision='mixed_bfloat16')
  assert keras.mixed_precision.global_policy().name == 'float32'  # restored
  assert model.backbone.get_layer('conv1').compute_dtype == 'bfloat16'
  logits = model(tf.zeros([2, 64, 96, 3]))
  assert logits.dtype == tf.float32 and logits.shape == (2, 64, 96, 5)
  assert model.score_c4.kernel.shape == (1, 1, 64, 5)  # C4 of the quarter-width ResNet-18
  with pytest.raises(ValueError, match="precision must be one of .* got 'mixed_float16'"):
    finetune.build(tiny_backbone, tiny_architecture, 5, precision='mixed_float16')


def test_bad_folders_name_the_file(scenes, tmp_path):
  with pytest.raises(FileNotFoundError, match=f'{tmp_path} needs images/ and labels/'):
    probe.load_splits((32, 48), 9, train=str(tmp_path), val=scenes.folder)
  for sub in ('images', 'labels'):
    (tmp_path / sub).mkdir()
  Image.new('RGB', (40, 30)).save(tmp_path / 'images' / 'a.png')
  Image.new('L', (40, 32)).save(tmp_path / 'labels' / 'a.png')
  label = tmp_path / 'labels' / 'a.png'
  with pytest.raises(ValueError, match=f'{label} is 40x32 .* image .*a.png is 40x30'):
    probe.load_splits((32, 48), 9, train=scenes.folder, val=str(tmp_path))


def test_finetune_script_with_baseline(scenes, tiny_backbone, tiny_architecture, tmp_path):
  weights, _ = keras_weights.export_keras(tiny_backbone, str(tmp_path / 'keras'))
  out = tmp_path / 'finetune.json'
  depth, width, output_stride = tiny_architecture
  completed = subprocess.run(
      [sys.executable, SCRIPT, '--keras_weights', weights, '--baseline', '--depth', str(depth),
       '--width', str(width), '--output_stride', str(output_stride), '--data', scenes.folder,
       '--train_fraction', '0.75', '--limit', '8', '--num_classes', '9', '--size', '64', '96',
       '--crop', '48', '48', '--steps', '3', '--batch_size', '2', '--head_channels', '16',
       '--use_c4', '--out', str(out)],
      capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  result = json.loads(out.read_text())
  assert result['train_images'] == 6 and result['val_images'] == 2
  assert result['crop'] == [48, 48] and result['use_c4'] and len(result['train_loss']) == 1
  assert result['architecture'] == {'depth': 18, 'width': 0.25, 'output_stride': 32}
  assert result['class_names'][0] == 'sky' and len(result['per_class_iou']) == 9
  # The exported weights are the random init of the same seed: the baseline is the same run.
  assert result['baseline']['final_train_loss'] == pytest.approx(result['final_train_loss'],
                                                                 rel=1e-3)
  assert completed.stdout.splitlines()[0].split() == ['pretrained', 'random', 'init']
