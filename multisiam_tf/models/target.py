"""The target side's state: the EMA update of eq. 2 with its momentum schedule, and MoCo's key
queues (App. B.2).

Both write variables that a tf.distribute strategy mirrors across replicas. Mirrored variables
cannot be assigned from a replica, so the writes run in cross-replica context: through
`merge_call` when called from a replica, directly otherwise.
"""

import math

import tensorflow as tf


def target_momentum(step, total_steps, tau_base):
  """tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2: tau_base at k = 0, 1 at k >= K (eq. 2)."""
  total = tf.cast(total_steps, tf.float32)
  progress = tf.math.divide_no_nan(tf.minimum(tf.cast(step, tf.float32), total), total)
  return 1.0 - (1.0 - tau_base) * 0.5 * (1.0 + tf.cos(math.pi * progress))


def ema_update(pairs, tau):
  """xi <- tau xi + (1 - tau) theta for every (target xi, online theta) Keras variable pair."""

  def ema(strategy, tau):
    # `.value`: the tf.Variable (mirrored under a strategy) inside each Keras variable; tau is
    # per replica here, so it travels through args too.
    for t, o in pairs:
      strategy.extended.update(
          t.value, lambda t, o, tau: t.assign(tau * t + (1 - tau) * tf.cast(o, t.dtype)),
          args=(o.value, tau))

  _in_cross_replica(ema, tau)


def initial_queue(size, dim, seed):
  """float32 [size, dim] of random unit vectors: the queue before any key entered it."""
  return tf.math.l2_normalize(tf.random.stateless_normal([size, dim], seed=seed), axis=-1)


def push(queue, keys):
  """The newest keys [N, D] of every replica go in front of `queue`, the oldest drop out."""
  ctx = tf.distribute.get_replica_context()
  keys = tf.cast(keys, tf.float32)
  if ctx is not None:
    keys = ctx.all_gather(keys, axis=0)

  def enqueue(strategy, keys):
    strategy.extended.update(
        queue.value, lambda q, k: q.assign(tf.concat([k, q], axis=0)[:q.shape[0]]), args=(keys,))

  _in_cross_replica(enqueue, tf.math.l2_normalize(keys, axis=-1))


def _in_cross_replica(fn, *args):
  ctx = tf.distribute.get_replica_context()
  if ctx is None:
    fn(tf.distribute.get_strategy(), *args)
  else:
    ctx.merge_call(fn, args=args)
