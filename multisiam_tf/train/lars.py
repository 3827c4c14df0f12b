"""LARS (You et al., 2017) in the form of BYOL and TF Model Garden (paper §4.1; METHOD.md §5).

Per variable w with gradient g, learning rate lr, momentum m, trust coefficient eta:
  g <- g + wd * w                                   (coupled weight decay)
  trust = eta * ||w|| / ||g||  if both norms > 0, else 1
  v <- m * v + lr * trust * g
  w <- w - v
Template: keras/src/optimizers/lamb.py.
"""

import re

import keras
from keras import ops


@keras.saving.register_keras_serializable(package='multisiam_tf')
class LARS(keras.optimizers.Optimizer):
  """Layer-wise Adaptive Rate Scaling with momentum and coupled weight decay.

  By default every variable of rank <= 1 (biases, BN scales and offsets) is excluded from both
  weight decay and trust scaling, as in BYOL. Further variables are excluded by regular
  expressions searched in `variable.path` (e.g. 'head/.*kernel'). Keras' own decoupled
  `weight_decay` step is replaced by the coupled one above.

  Args:
    learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
    momentum: m in [0, 1).
    weight_decay: wd, added to the gradient as wd * w.
    trust_coefficient: eta.
    exclude_rank1: exclude variables of rank <= 1 from weight decay and trust scaling.
    exclude_from_weight_decay: path patterns excluded from weight decay.
    exclude_from_layer_adaptation: path patterns excluded from trust scaling (trust = 1);
      None means the weight-decay patterns, as Model Garden's LARS.
    **kwargs: the base optimizer's arguments (name, clipnorm, gradient_accumulation_steps, ...).
  """

  def __init__(self, learning_rate=1.0, momentum=0.9, weight_decay=1e-5,
               trust_coefficient=1e-3, exclude_rank1=True, exclude_from_weight_decay=None,
               exclude_from_layer_adaptation=None, **kwargs):
    super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
    self.momentum = momentum
    self.trust_coefficient = trust_coefficient
    self.exclude_rank1 = exclude_rank1
    # Not `self.exclude_from_weight_decay`: that name is the base class's method.
    self.weight_decay_exclusions = list(exclude_from_weight_decay or [])
    self.layer_adaptation_exclusions = (
        None if exclude_from_layer_adaptation is None else list(exclude_from_layer_adaptation))

  def build(self, var_list):
    if self.built:
      return
    super().build(var_list)
    self._velocities = self.add_optimizer_variables(var_list, 'velocity')
    adaptation_exclusions = (self.weight_decay_exclusions
                             if self.layer_adaptation_exclusions is None
                             else self.layer_adaptation_exclusions)
    # Decided once per variable here, where keras variables still carry their paths.
    self._decay = [self._included(v, self.weight_decay_exclusions) and self._use_weight_decay(v)
                   for v in var_list]
    self._adapt = [self._included(v, adaptation_exclusions) for v in var_list]

  def _included(self, variable, patterns):
    if self.exclude_rank1 and len(variable.shape) <= 1:
      return False
    return not any(re.search(p, variable.path) for p in patterns)

  def _apply_weight_decay(self, variables):
    """Weight decay is coupled into the gradient in update_step, not applied separately."""

  def update_step(self, gradient, variable, learning_rate):
    index = self._get_variable_index(variable)
    lr = ops.cast(learning_rate, variable.dtype)
    g = ops.cast(gradient, variable.dtype)
    if self._decay[index] and self.weight_decay:
      g = g + ops.cast(self.weight_decay, variable.dtype) * variable
    if self._adapt[index]:
      w_norm = ops.sqrt(ops.sum(ops.square(variable)))
      g_norm = ops.sqrt(ops.sum(ops.square(g)))
      positive = ops.logical_and(ops.greater(w_norm, 0), ops.greater(g_norm, 0))
      trust = ops.where(positive, self.trust_coefficient * w_norm / g_norm, 1.0)
      lr = lr * ops.cast(trust, variable.dtype)
    v = self._velocities[index]
    self.assign(v, ops.cast(self.momentum, variable.dtype) * v + lr * g)
    self.assign_sub(variable, v)

  def get_config(self):
    config = super().get_config()
    config.update({
        'momentum': self.momentum,
        'trust_coefficient': self.trust_coefficient,
        'exclude_rank1': self.exclude_rank1,
        'exclude_from_weight_decay': list(self.weight_decay_exclusions),
        'exclude_from_layer_adaptation': (None if self.layer_adaptation_exclusions is None
                                          else list(self.layer_adaptation_exclusions)),
    })
    return config
