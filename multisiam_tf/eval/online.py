"""The dense linear probe during pretraining: mIoU on eval.data every eval.every steps.

The labelled folder eval.data (images/ + labels/, as scripts/probe.py --data reads it) is loaded
once at eval.size and split in halves; every eval.every steps the chief probes the current online
backbone on it (probe.run: the backbone in inference mode, which leaves its BN statistics alone,
features cached, eval.epochs epochs of the classifier, seeded locally so that training's random
streams are untouched). The scores go to TensorBoard and metrics.jsonl as eval/miou,
eval/pixel_accuracy and eval/iou/<class> (classes seen in the val half).
"""

from multisiam_tf.eval import probe

PREFIX = 'eval/'


class DenseProbe:
  """A hook of train.loop.train (see there): the probe's scalars every `config.eval.every` steps,
  on the chief only; other workers return none and do not load the data."""

  def __init__(self, config, chief):
    e = config.eval
    self.every, self.chief = e.every, chief
    if chief:
      train, val, names, num_classes, ignore_index = probe.load_splits(
          e.size, e.data, num_classes=e.num_classes, ignore_index=e.ignore_index)
      self._splits = (train, val)
      self._options = dict(num_classes=num_classes, ignore_index=ignore_index,
                           class_names=names, epochs=e.epochs, seed=config.seed)

  def next_step(self, step):
    return (step // self.every + 1) * self.every

  def __call__(self, model, step):
    if step % self.every or not self.chief:
      return {}
    return scalars(probe.run(probe.keras_features(model.online_backbone), *self._splits,
                             **self._options))


def scalars(result):
  """The probe record's mIoU, pixel accuracy and per-class IoU as scalars named eval/..."""
  out = {PREFIX + 'miou': result['miou'], PREFIX + 'pixel_accuracy': result['pixel_accuracy']}
  for name, iou in zip(result['class_names'], result['per_class_iou']):
    if iou is not None:  # a class absent from the val half and never predicted has no IoU
      out[f'{PREFIX}iou/{name}'] = iou
  return out


def hooks(config, chief):
  """The loop hooks `config.eval` asks for: a DenseProbe when eval.data is set."""
  return [DenseProbe(config, chief)] if config.eval.data else []
