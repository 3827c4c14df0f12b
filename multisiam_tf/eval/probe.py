"""Dense linear probe: a 1x1 convolution on a frozen backbone's final map, scored by mIoU.

The backbone runs once per image and its maps are cached in memory, so the probe's epochs cost
only the classifier. A random-init backbone of the same architecture, probed with the same seed,
is the baseline a pretrained one must beat.

A backbone enters as a feature function: float images [B, H, W, 3] in 0-255 -> dict with at
least 'c4' and 'c5' (the contract of the exported SavedModel's `features` signature).
"""

import json

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from multisiam_tf.data import augment
from multisiam_tf.eval import labelled
from multisiam_tf.models import resnet
from multisiam_tf.train import checkpoints


def keras_features(backbone):
  """Feature function of a Keras ResNet, which takes ImageNet-normalised images."""
  def features(images):
    return backbone(augment.normalize(images / 255.0), training=False)
  return features


def saved_model_features(path):
  """Feature function of an exported SavedModel's `features` signature."""
  loaded = tf.saved_model.load(path)
  (name,) = loaded.signatures['features'].structured_input_signature[1]
  def features(images):
    return loaded.signatures['features'](**{name: images})  # holds `loaded`: its variables live
  return features


def random_backbone(architecture, seed):
  """A freshly initialised ResNet; architecture is (depth, width, output_stride)."""
  keras.utils.set_random_seed(seed)
  depth, width, output_stride = architecture
  return resnet.ResNet(depth, width=width, output_stride=output_stride)


def load_keras_weights(backbone, path, architecture):
  """Fills `backbone` from a `.weights.h5` file (export/keras_weights.py), naming the file when
  it holds another architecture."""
  try:
    backbone.load_weights(path)
  except (ValueError, KeyError) as e:
    depth, width, output_stride = architecture
    raise ValueError(f'{path} does not fit a ResNet-{depth} of width {width} (--depth, '
                     f'--width): {e}') from e


def load_backbone(workdir=None, step=None, keras_weights=None, architecture=None, seed=0):
  """(Keras ResNet, architecture) of a training workdir, else a Keras weights file, else a
  random init.

  The architecture (depth, width, output_stride) is the workdir config's, else the one given
  (a weights file does not record it; a random init needs it).
  """
  if workdir:
    backbone, config, _ = checkpoints.restore_backbone(workdir, step)
    b = config.model.backbone
    return backbone, (b.depth, b.width, b.output_stride)
  backbone = random_backbone(architecture, seed)
  if keras_weights:
    load_keras_weights(backbone, keras_weights, architecture)
  return backbone, architecture


def load_features(workdir=None, step=None, saved_model=None, architecture=None, seed=0,
                  keras_weights=None):
  """(feature function, architecture) of a SavedModel, else of `load_backbone`'s backbone.

  A SavedModel does not record its architecture: it is returned as given.
  """
  if saved_model:
    return saved_model_features(saved_model), architecture
  backbone, architecture = load_backbone(workdir, step, keras_weights, architecture, seed)
  return keras_features(backbone), architecture


def probe_input(endpoints, use_c4):
  """float32 C5, or C4 with C5 resized bilinearly to it and concatenated."""
  c5 = tf.cast(endpoints['c5'], tf.float32)  # a mixed-precision backbone returns bfloat16
  if not use_c4:
    return c5
  c4 = tf.cast(endpoints['c4'], tf.float32)
  return tf.concat([c4, tf.image.resize(c5, tf.shape(c4)[1:3])], axis=-1)


def extract(features, images, use_c4=False, batch_size=8, scale=None):
  """Probe inputs of uint8 images [N, H, W, 3] as float16 [N, h, w, C] / scale, and the scale.

  Random-init deep ResNets reach float16's range (~4e4 for ResNet-101 at 64 px), so maps are
  divided by a power of two (exact) that brings the first batch to at most 1; pass the train
  split's scale for the val split. The probe standardises its inputs, so the scale cancels.
  """
  maps = []
  for start in range(0, len(images), batch_size):
    batch = probe_input(features(tf.constant(images[start:start + batch_size], tf.float32)),
                        use_c4).numpy()
    if scale is None:
      scale = float(2.0 ** np.ceil(np.log2(max(np.abs(batch).max(), 1e-30))))
    maps.append((batch / scale).astype(np.float16))
  maps = np.concatenate(maps)
  if not np.isfinite(maps).all():
    raise FloatingPointError(f'backbone features exceed float16 even divided by {scale}')
  return maps, scale


def valid_mask(labels, num_classes, ignore_index):
  """Pixels that count: a class id below num_classes and not the ignore value."""
  return (labels < num_classes) & (labels != ignore_index)


def confusion_matrix(labels, predictions, num_classes, ignore_index=255):
  """int64 [num_classes, num_classes]: rows ground truth, columns prediction; ignored pixels out."""
  labels = np.asarray(labels, np.int64).ravel()
  predictions = np.asarray(predictions, np.int64).ravel()
  keep = valid_mask(labels, num_classes, ignore_index)
  index = num_classes * labels[keep] + predictions[keep]
  return np.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores(confusion, ignore_index=255):
  """mIoU over the classes seen in labels or predictions, per-class IoU (None: unseen), accuracy.

  An ignore value below num_classes names no class, so it gets no IoU even where predicted.
  """
  true_positive = np.diag(confusion).astype(np.float64)
  union = confusion.sum(0) + confusion.sum(1) - true_positive
  seen = (union > 0) & (np.arange(len(confusion)) != ignore_index)
  iou = np.where(seen, true_positive / np.maximum(union, 1), np.nan)
  return {
      'miou': float(np.mean(iou[seen])) if seen.any() else float('nan'),
      'per_class_iou': [float(v) if s else None for v, s in zip(iou, seen)],
      'pixel_accuracy': float(true_positive.sum() / max(confusion.sum(), 1)),
  }


def masked_cross_entropy(logits, labels, num_classes, ignore_index=255):
  """Mean softmax cross-entropy of float32 logits [..., K] over the pixels `valid_mask` keeps."""
  labels = tf.cast(labels, tf.int32)
  valid = valid_mask(labels, num_classes, ignore_index)
  losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.where(valid, labels, 0), logits)
  weights = tf.cast(valid, tf.float32)
  return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def majority_class(train_labels, val_labels, num_classes, ignore_index=255):
  """The most frequent valid training class and the val scores of predicting it everywhere:
  the level any trained classifier must beat."""
  counted = train_labels[valid_mask(train_labels, num_classes, ignore_index)]
  majority = int(np.bincount(counted, minlength=num_classes).argmax())
  result = scores(confusion_matrix(val_labels, np.full_like(val_labels, majority), num_classes,
                                   ignore_index), ignore_index)
  return {'class': majority, 'miou': result['miou'], 'pixel_accuracy': result['pixel_accuracy']}


def evaluate(predictions, train_labels, val_labels, num_classes, ignore_index=255,
             class_names=None):
  """The scores of val predictions (see `scores`) with the class names, the majority-class
  level and the sizes of the splits: the record probe and fine-tuning results share."""
  result = scores(confusion_matrix(val_labels, predictions, num_classes, ignore_index),
                  ignore_index)
  result.update(
      class_names=list(class_names or map(str, range(num_classes))),
      majority_class=majority_class(train_labels, val_labels, num_classes, ignore_index),
      train_images=len(train_labels), val_images=len(val_labels),
      size=list(val_labels.shape[1:3]))
  return result


def _channel_moments(maps, chunk=64):
  """Per-channel mean and std over all pixels, in float64, a chunk of images at a time."""
  total, squares = 0.0, 0.0
  for start in range(0, len(maps), chunk):
    x = maps[start:start + chunk].astype(np.float64)
    total, squares = total + x.sum((0, 1, 2)), squares + np.square(x).sum((0, 1, 2))
  n = np.prod(maps.shape[:3])
  mean = total / n
  std = np.sqrt(np.maximum(squares / n - mean ** 2, 0.0))
  return tf.constant(mean, tf.float32), tf.constant(np.maximum(std, 1e-6), tf.float32)


def _logits(classifier, maps, mean, std, size):
  # Fixed per-channel standardisation keeps the probe linear and lets one lr fit every backbone.
  x = (tf.cast(maps, tf.float32) - mean) / std
  return tf.image.resize(classifier(x), size, method='bilinear')


def train_classifier(maps, labels, num_classes, ignore_index=255, lr=1e-2, epochs=30,
                     batch_size=8, seed=0):
  """Fits the 1x1-conv classifier with Adam; returns (predict function, final epoch's loss).

  Its randomness is seeded here and draws nothing from the global generators, so a probe
  during pretraining leaves training's random streams alone (eval/online.py).
  """
  mean, std = _channel_moments(maps)
  size = labels.shape[1:3]
  classifier = keras.layers.Conv2D(num_classes, 1,
                                   kernel_initializer=keras.initializers.GlorotUniform(seed))
  classifier.build((None, None, None, maps.shape[-1]))
  optimizer = keras.optimizers.Adam(lr)

  @tf.function(reduce_retracing=True)
  def step(x, y):
    with tf.GradientTape() as tape:
      loss = masked_cross_entropy(_logits(classifier, x, mean, std, size), y, num_classes,
                                  ignore_index)
    grads = tape.gradient(loss, classifier.trainable_variables)
    optimizer.apply_gradients(zip(grads, classifier.trainable_variables))
    return loss

  rng = np.random.default_rng(seed)
  loss = float('nan')
  for _ in range(epochs):
    batch_losses = []
    for batch in np.array_split(rng.permutation(len(maps)), -(-len(maps) // batch_size)):
      batch_losses.append(float(step(tf.constant(maps[batch]), tf.constant(labels[batch]))))
    loss = float(np.mean(batch_losses))

  def predict(val_maps):
    return tf.argmax(_logits(classifier, val_maps, mean, std, size), axis=-1).numpy()
  return predict, loss


def run(features, train, val, num_classes, ignore_index=255, use_c4=False, lr=1e-2, epochs=30,
        batch_size=8, seed=0, class_names=None):
  """Probes a feature function; train and val are (uint8 images, uint8 labels) at one size.

  The backbone sees each image once (`extract`); the epochs reuse the cached maps. Returns the
  scores on val (see `scores`) with the training details and, for scale, the scores of
  predicting the most frequent training class everywhere.
  """
  train_maps, scale = extract(features, train[0], use_c4, batch_size)
  val_maps, _ = extract(features, val[0], use_c4, batch_size, scale)
  predict, loss = train_classifier(train_maps, train[1], num_classes, ignore_index, lr, epochs,
                                   batch_size, seed)
  predictions = np.concatenate([predict(val_maps[i:i + batch_size])
                                for i in range(0, len(val_maps), batch_size)])
  result = evaluate(predictions, train[1], val[1], num_classes, ignore_index, class_names)
  result.update(
      feature_shape=list(val_maps.shape[1:]), use_c4=use_c4, lr=lr, epochs=epochs,
      batch_size=batch_size, seed=seed, final_train_loss=loss)
  return result


def write_json(result, path):
  with open(path, 'w') as f:
    json.dump(result, f, indent=2)


def _percent(value):
  return '     -' if value is None else f'{100 * value:6.1f}'


def table(results):
  """Per-class IoU (%), one column per named result; then mIoU, pixel accuracy, majority mIoU."""
  names = list(results)
  first = results[names[0]]
  width = max(len(n) for n in first['class_names'] + ['pixel accuracy'])
  lines = [' ' * width + ''.join(f'  {n:>12}' for n in names)]
  for i, class_name in enumerate(first['class_names']):
    lines.append(f'{class_name:<{width}}' +
                 ''.join(f'  {_percent(results[n]["per_class_iou"][i]):>12}' for n in names))
  for key, label in (('miou', 'mIoU'), ('pixel_accuracy', 'pixel accuracy')):
    lines.append(f'{label:<{width}}' + ''.join(f'  {_percent(results[n][key]):>12}' for n in names))
  majority = first['majority_class']
  lines.append(f'(predicting the most frequent class, {first["class_names"][majority["class"]]}, '
               f'everywhere: mIoU {_percent(majority["miou"]).strip()})')
  return '\n'.join(lines)


def add_backbone_arguments(parser, architecture_help, saved_model=True):
  """The command-line choice of backbone that `load_features` and `load_backbone` read: a run,
  a Keras weights file, a SavedModel (where `saved_model`) or a random init of the given
  architecture (shared by scripts/probe.py, finetune.py and visualize.py)."""
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--workdir', help='training run to restore the backbone from')
  source.add_argument('--keras_weights',
                      help='backbone.weights.h5 (scripts/export.py --format keras) of the '
                           'architecture below')
  if saved_model:
    source.add_argument('--saved_model', help='exported SavedModel with a `features` signature')
  source.add_argument('--random_init', action='store_true', help='a freshly initialised ResNet')
  parser.add_argument('--step', type=int, help='checkpoint step of --workdir (default: newest)')
  parser.add_argument('--depth', type=int, default=50, choices=(18, 34, 50, 101),
                      help='ResNet depth ' + architecture_help)
  parser.add_argument('--width', type=float, default=1.0,
                      help='channel multiplier ' + architecture_help)
  parser.add_argument('--output_stride', type=int, default=32, choices=(16, 32),
                      help='output stride ' + architecture_help)
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of the random init and of the evaluation')


def add_data_arguments(parser):
  """The labelled data and their common size that `load_splits` reads."""
  data = parser.add_mutually_exclusive_group(required=True)
  data.add_argument('--data', help='one labelled folder, split by --train_fraction')
  data.add_argument('--train', help='labelled training data (with --val)')
  parser.add_argument('--val', help='labelled evaluation data (with --train)')
  parser.add_argument('--format', default='folder', choices=labelled.FORMATS,
                      help='layout of the labelled data (eval/labelled.py)')
  parser.add_argument('--train_split', default='train', help='split of --train (or --data)')
  parser.add_argument('--val_split', default='val', help='split of --val')
  parser.add_argument('--train_fraction', type=float, default=0.5,
                      help='first part of --data (in name order) to train on; the rest is val')
  parser.add_argument('--limit', type=int, help='use only the first N images of each folder')
  parser.add_argument('--train_images', type=int,
                      help='train on N of the training images, evenly spaced in name order '
                      '(few labels: the regime pretraining is for); val keeps all of its own')
  parser.add_argument('--num_classes', type=int,
                      help='class ids 0..N-1 count; larger label values are ignored (default: '
                      "the dataset's; --format folder needs it)")
  parser.add_argument('--ignore_index', type=int,
                      help="label value to ignore (default: the dataset's, 255 for a folder)")
  parser.add_argument('--size', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'),
                      help='images (bilinear) and labels (nearest) are resized to this')


def check_arguments(parser, args):
  """The rules argparse cannot state: --train with --val, a folder's class count, --baseline not
  with --random_init."""
  if bool(args.train) != bool(args.val):
    parser.error('--train and --val go together')
  if args.format == 'folder' and args.num_classes is None:
    parser.error('--format folder needs --num_classes')
  if getattr(args, 'baseline', False) and args.random_init:
    parser.error('--baseline compares with a random init; --random_init already is one')


def load_splits(size, data=None, train=None, val=None, *, data_format='folder',
                train_split='train', val_split='val', num_classes=None, ignore_index=None,
                train_fraction=0.5, limit=None, train_images=None):
  """(train, val, class names, num_classes, ignore_index): one labelled set split by
  train_fraction, or a train and a val set, as (uint8 images, uint8 labels) at size, the training
  split cut to `train_images` of its images (labelled.spread); every label is checked to have its
  image's size. Unset classes and ignore value: the dataset's.
  Label values the classes and ignore value leave out are counted in a warning."""
  size = tuple(size)
  found = labelled.dataset(data or train, data_format, train_split)
  num_classes = num_classes or found.num_classes
  ignore_index = found.ignore_index if ignore_index is None else ignore_index
  train = labelled.arrays(found, size, limit)
  if data:
    train, val = labelled.split(*train, train_fraction)
  else:
    val = labelled.load(val, size, limit, data_format, val_split)
  if train_images is not None:
    train = labelled.spread(*train, train_images)
  warn_unknown_classes((train[1], val[1]), num_classes, ignore_index)
  names = labelled.name_list(found.class_names, num_classes)
  return train, val, names, num_classes, ignore_index


def warn_unknown_classes(label_sets, num_classes, ignore_index):
  """Warns with their count of the label pixels >= num_classes that are not ignore_index: the
  probe ignores them (valid_mask), so a num_classes below the labels' drops classes."""
  unknown = np.concatenate([labels[~valid_mask(labels, num_classes, ignore_index)
                                   & (labels != ignore_index)] for labels in label_sets])
  if unknown.size:
    logging.warning('%d label pixels hold class ids >= --num_classes %d (%s) other than the '
                    'ignore value %d: they are ignored', unknown.size, num_classes,
                    ', '.join(map(str, np.unique(unknown))), ignore_index)


def load_splits_of(args):
  """load_splits of `add_data_arguments`' flags."""
  return load_splits(args.size, args.data, args.train, args.val, data_format=args.format,
                     train_split=args.train_split, val_split=args.val_split,
                     num_classes=args.num_classes, ignore_index=args.ignore_index,
                     train_fraction=args.train_fraction, limit=args.limit,
                     train_images=args.train_images)
