"""The optimizer of `optim.name` on lr = base_lr * (batch_size * accumulate_steps) / 256, warmup
then cosine (METHOD.md §5).

  lars   the paper's: LARS with momentum, coupled weight decay and trust eta (train/lars.py)
  sgd    the same without trust scaling: SGD with momentum and coupled weight decay
  adamw  Keras' AdamW (decoupled weight decay), as small-scale SSL recipes often use

Every variable of rank <= 1 (biases, BN scales and offsets) is excluded from weight decay in all
three, as in BYOL.
"""

import keras

from multisiam_tf.train import lars
from multisiam_tf.train import schedules


def make(config, variables):
  """The optimizer of `config` (its schedule in steps) for `variables`, not yet built."""
  t, o = config.train, config.optim
  lr = schedules.WarmupCosine(o.base_lr, t.batch_size * t.accumulate_steps, o.warmup_steps,
                              t.steps)
  if o.name == 'adamw':
    optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=o.weight_decay)
    optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])
  else:
    no_trust = ['.'] if o.name == 'sgd' else None  # '.' matches every variable's path
    optimizer = lars.LARS(learning_rate=lr, momentum=o.momentum, weight_decay=o.weight_decay,
                          trust_coefficient=o.trust_coefficient,
                          exclude_from_layer_adaptation=no_trust)
  if keras.mixed_precision.global_policy().name == 'mixed_float16':
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
