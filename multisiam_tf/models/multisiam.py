"""MultiSiam: the online and target networks, the symmetrised loss and the training step.

One forward direction (online view a, target view b), paper §3:
  F = f_theta(v_a)        F' = f_xi(v_b)                    backbones, C5 maps
  1D: q = p(h(pool F))    z' = h'(pool F')                  L_1D = -cos(q, z')          (eq. 1)
  2D: G = g(F)            G' = g'(F')                       flipped back to the box geometry
      R, R' = align(G, G')                                  RoI (eqs. 3-4), offset (eqs. 5-7), none
      Q = sum sim(R, R) q(R)                                attention predictor    (eqs. 8-9)
      L_2D = -cos(Q, Kmeans(R'))                                                    (eq. 10)
  L = lambda L_1D + (1 - lambda) L_2D, averaged over both directions               (eq. 11)
The target is the EMA of the online network (eq. 2), updated after each optimizer step.
`method: byol` keeps the 1D branch only; `multisiam_moco` is App. B.2 (see _moco_direction).
"""

import keras
import tensorflow as tf

from multisiam_tf.models import align
from multisiam_tf.models import heads
from multisiam_tf.models import kmeans as kmeans_lib
from multisiam_tf.models import losses
from multisiam_tf.models import resnet
from multisiam_tf.train import schedules

# Plain TF with no data-dependent Python control flow: AutoGraph would only add tracing time.
_plain_graph = tf.autograph.experimental.do_not_convert

_METRICS = ('loss', 'loss_1d', 'loss_2d', 'fallback_rate', 'projection_std')


class MultiSiam(keras.Model):
  """Online network (trained) and target network (EMA of the online one), per config.model."""

  def __init__(self, config, **kwargs):
    super().__init__(name='multisiam', **kwargs)
    self.config = config
    m = config.model
    self.two_d = m.method != 'byol'
    self.moco = m.method == 'multisiam_moco'
    hidden, out, sync_bn = m.head.hidden_dim, m.head.output_dim, m.backbone.sync_bn

    def backbone(name):
      return resnet.ResNet(m.backbone.depth, m.backbone.width, m.backbone.output_stride,
                           sync_bn=m.backbone.sync_bn, name=name)

    self.online_backbone = backbone('online_backbone')
    self.target_backbone = backbone('target_backbone')
    self.online_projector = heads.mlp(hidden, out, 'online_projector', sync_bn)
    self.target_projector = heads.mlp(hidden, out, 'target_projector', sync_bn)
    # MoCo has no predictor: its queries are the online projections themselves.
    self.predictor = None if self.moco else heads.mlp(hidden, out, 'predictor', sync_bn)
    if self.two_d:
      self.online_projector_2d = heads.conv_mlp(hidden, out, 'online_projector_2d', sync_bn)
      self.target_projector_2d = heads.conv_mlp(hidden, out, 'target_projector_2d', sync_bn)
      if not self.moco:
        self.predictor_2d = heads.AttentionPredictor(
            hidden, out, power=m.attention.power, residual=m.attention.residual,
            enabled=m.attention.enabled, sync_bn=sync_bn, name='predictor_2d')
    if self.moco:
      self.queue_1d = self._queue('queue_1d', 1)
      self.queue_2d = self._queue('queue_2d', 2)
    self.trackers = {name: keras.metrics.Mean(name=name) for name in _METRICS}

  def _queue(self, name, index):
    m = self.config.model
    queue = tf.math.l2_normalize(
        tf.random.stateless_normal([m.moco.queue_size, m.head.output_dim],
                                   seed=[self.config.seed, index]), axis=-1)
    return self.add_weight(name=name, shape=queue.shape, initializer=lambda *_, **__: queue,
                           trainable=False)

  @property
  def online_variables(self):
    modules = [self.online_backbone, self.online_projector]
    modules += [self.predictor] if self.predictor is not None else []
    if self.two_d:
      modules.append(self.online_projector_2d)
      modules += [] if self.moco else [self.predictor_2d]
    return [v for module in modules for v in module.trainable_variables]

  @property
  def metrics(self):
    return list(self.trackers.values())

  def target_pairs(self):
    """(target, online) modules whose weights the EMA ties together (eq. 2)."""
    pairs = [(self.target_backbone, self.online_backbone),
             (self.target_projector, self.online_projector)]
    if self.two_d:
      pairs.append((self.target_projector_2d, self.online_projector_2d))
    return pairs

  def build_variables(self):
    """Creates every variable with one forward pass and copies online weights into the target."""
    size = self.config.data.image_size
    self.forward(self._dummy_batch(size), training=False)
    for target, online in self.target_pairs():
      for t, o in zip(target.weights, online.weights):
        t.assign(o)

  @staticmethod
  def _dummy_batch(size):
    views = tf.zeros([2, size, size, 3])
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0]] * 2)
    flips = tf.zeros([2], tf.bool)
    return {'view1': views, 'view2': views, 'box1': boxes, 'box2': boxes, 'flip1': flips,
            'flip2': flips, 'fallback': flips}

  # Forward.

  def _encode(self, view, flip, training):
    """Both networks on one view: online {z, G or F} and target {z', G' or F'}, maps flipped
    back to the geometry of the view's box."""
    f = self.online_backbone(view, training=training)['c5']
    f_t = tf.stop_gradient(self.target_backbone(view, training=training)['c5'])
    online = {'z': self.online_projector(tf.reduce_mean(f, axis=[1, 2]), training=training)}
    target = {'z': tf.stop_gradient(
        self.target_projector(tf.reduce_mean(f_t, axis=[1, 2]), training=training))}
    if self.moco:  # App. B.2 aligns F itself, before the projectors
      online['f'], target['f'] = align.flip_back(f, flip), align.flip_back(f_t, flip)
    elif self.two_d:
      online['g'] = align.flip_back(self.online_projector_2d(f, training=training), flip)
      target['g'] = tf.stop_gradient(
          align.flip_back(self.target_projector_2d(f_t, training=training), flip))
    return online, target

  @_plain_graph
  def forward(self, batch, training):
    """Both directions of the symmetrised loss: (metrics, per-direction results)."""
    encoded = [self._encode(batch[f'view{i}'], batch[f'flip{i}'], training) for i in (1, 2)]
    direction = self._moco_direction if self.moco else self._direction
    results = [direction(encoded[a][0], encoded[b][1], batch[f'box{a + 1}'],
                         batch[f'box{b + 1}'], training) for a, b in ((0, 1), (1, 0))]
    l_1d = (results[0]['loss_1d'] + results[1]['loss_1d']) / 2
    lam = self.config.model.loss_lambda if self.two_d else 1.0
    if self.two_d:
      l_2d = (results[0]['loss_2d'] + results[1]['loss_2d']) / 2
    else:
      l_2d = tf.zeros([])
    z = tf.math.l2_normalize(tf.cast(encoded[0][0]['z'], tf.float32), axis=-1)
    metrics = {
        'loss': losses.total_loss(l_1d, l_2d, lam), 'loss_1d': l_1d, 'loss_2d': l_2d,
        'fallback_rate': tf.reduce_mean(tf.cast(batch['fallback'], tf.float32)),
        # Near 0 means collapse; 1/sqrt(D) for well-spread projections (BYOL §3.2 monitoring).
        'projection_std': tf.reduce_mean(tf.math.reduce_std(z, axis=0)),
    }
    return metrics, results

  def _direction(self, online, target, box_a, box_b, training):
    out = {'loss_1d': losses.byol_loss(self.predictor(online['z'], training=training),
                                       target['z'])}
    if not self.two_d:
      return out
    r, r_t = self._align(tf.cast(online['g'], tf.float32), tf.cast(target['g'], tf.float32),
                         box_a, box_b)
    q_map = self.predictor_2d(r, training=training)
    km = self.config.model.kmeans
    if not km.enabled:
      out['loss_2d'] = losses.cluster_loss(q_map, r_t)  # eq. 15
      return out
    centroids, assignment = kmeans_lib.kmeans(r_t, km.k, km.iterations, km.metric)
    out['assignment'] = assignment
    if km.dense:
      out['loss_2d'] = losses.dense_cluster_loss(q_map, r_t, assignment)
    else:
      out['loss_2d'] = losses.cluster_loss(q_map, centroids)  # eq. 10
    return out

  def _align(self, g, g_t, box_a, box_b):
    """(R, R') from the flipped-back projected maps (eqs. 3-7)."""
    m = self.config.model
    size = (g.shape[1], g.shape[2])
    if m.alignment == 'roi':
      rel_a, rel_b = align.intersection_in_views(box_a, box_b)
      return align.roi_align(g, rel_a, size), align.roi_align(g_t, rel_b, size)
    if m.alignment == 'offset':
      delta_c = align.offset_map(box_a, box_b, size, normalize=m.offset_normalize)
      return tf.concat([g, delta_c], axis=-1), g_t
    return g, g_t

  def _moco_direction(self, online, target, box_a, box_b, training):
    """MoCo-based MultiSiam (App. B.2): RoI alignment on F before the projectors, attention in
    the online projector (eq. 18), K-means on G' (eq. 19), per-pixel InfoNCE against a queue of
    other images' mean keys (DenseCL's dense queue); the 1D branch is MoCo's global InfoNCE."""
    m = self.config.model
    t = m.moco.temperature
    l_1d = losses.moco_pixel_loss(online['z'][:, None, None], target['z'][:, None, None],
                                  self.queue_1d, t)
    f, f_t = tf.cast(online['f'], tf.float32), tf.cast(target['f'], tf.float32)
    size = (f.shape[1], f.shape[2])
    rel_a, rel_b = align.intersection_in_views(box_a, box_b)
    r = align.roi_align(f, rel_a, size)  # eq. 16
    r_t = align.roi_align(f_t, rel_b, size)  # eq. 17
    g_local = tf.cast(self.online_projector_2d(r, training=training), tf.float32)
    g = heads.attention_sum(r, g_local, m.attention.power) if m.attention.enabled else g_local
    g_t = tf.stop_gradient(tf.cast(self.target_projector_2d(r_t, training=training), tf.float32))
    centroids, assignment = kmeans_lib.kmeans(g_t, m.kmeans.k, m.kmeans.iterations,
                                              m.kmeans.metric)
    positive = centroids if m.kmeans.enabled else g_t
    return {'loss_1d': l_1d, 'loss_2d': losses.moco_pixel_loss(g, positive, self.queue_2d, t),
            'assignment': assignment, 'keys_1d': target['z'],
            'keys_2d': tf.reduce_mean(tf.math.l2_normalize(g_t, axis=-1), axis=[1, 2])}

  def call(self, images, training=False):
    """The online backbone's endpoints: what downstream tasks use."""
    return self.online_backbone(images, training=training)

  # Training.

  @_plain_graph
  def gradients(self, batch):
    """(grads aligned with online_variables, metrics, forward results) for one batch."""
    with tf.GradientTape() as tape:
      metrics, results = self.forward(batch, training=True)
      replicas = tf.distribute.get_strategy().num_replicas_in_sync
      # The optimizer sums gradients over replicas; each replica contributes its share of the mean.
      loss = self.optimizer.scale_loss(metrics['loss'] / replicas)
    grads = tape.gradient(loss, self.online_variables)
    if self.moco:
      self._enqueue(results)
    return grads, metrics

  @_plain_graph
  def apply_update(self, grads):
    """One optimizer step on the online weights, then the EMA target update (eq. 2)."""
    self.optimizer.apply(grads, self.online_variables)
    step = tf.cast(self.optimizer.iterations, tf.float32)
    tau = schedules.target_momentum(step, self.config.train.steps, self.config.optim.tau_base)
    self.update_target(tau)
    return {'tau': tf.cast(tau, tf.float32),
            'lr': tf.cast(self.optimizer.learning_rate, tf.float32)}

  @_plain_graph
  def train_step(self, batch):
    grads, metrics = self.gradients(batch)
    metrics.update(self.apply_update(grads))
    for name in _METRICS:
      self.trackers[name].update_state(metrics[name])
    return metrics

  @_plain_graph
  def test_step(self, batch):
    metrics, _ = self.forward(batch, training=False)
    for name in _METRICS:
      self.trackers[name].update_state(metrics[name])
    return metrics

  @_plain_graph
  def update_target(self, tau):
    """xi <- tau xi + (1 - tau) theta (eq. 2), in cross-replica context (mirrored variables
    cannot be assigned from a replica)."""
    pairs = [(t, o) for target, online in self.target_pairs()
             for t, o in zip(target.trainable_variables, online.trainable_variables)]

    def ema(strategy, tau):
      # `.value`: the tf.Variable (mirrored under a strategy) inside each Keras variable; tau is
      # per replica here, so it travels through args too.
      for t, o in pairs:
        strategy.extended.update(
            t.value, lambda t, o, tau: t.assign(tau * t + (1 - tau) * tf.cast(o, t.dtype)),
            args=(o.value, tau))

    self._in_cross_replica(ema, tau)

  def _enqueue(self, results):
    """MoCo queues: the newest target keys of every replica go in front, the oldest drop out."""
    ctx = tf.distribute.get_replica_context()
    for queue, key in ((self.queue_1d, 'keys_1d'), (self.queue_2d, 'keys_2d')):
      keys = tf.concat([tf.cast(r[key], tf.float32) for r in results], axis=0)
      if ctx is not None:
        keys = ctx.all_gather(keys, axis=0)

      def push(strategy, keys, queue=queue):
        strategy.extended.update(
            queue.value, lambda q, k: q.assign(tf.concat([k, q], axis=0)[:q.shape[0]]),
            args=(keys,))

      self._in_cross_replica(push, tf.math.l2_normalize(keys, axis=-1))

  @staticmethod
  def _in_cross_replica(fn, *args):
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
      fn(tf.distribute.get_strategy(), *args)
    else:
      ctx.merge_call(fn, args=args)

  @_plain_graph
  def cluster_maps(self, batch):
    """K-means assignment [B, h, w] of the target map of view 1 seen from view 2 (TensorBoard)."""
    _, results = self.forward(batch, training=False)
    return results[1].get('assignment')
