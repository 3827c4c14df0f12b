"""MultiSiam: the online and target networks, the symmetrised loss and the EMA target update.

One forward direction (online view a, target view b), paper §3:
  F = f_theta(v_a)        F' = f_xi(v_b)                    backbones, C5 maps
  1D: q = p(h(pool F))    z' = h'(pool F')                  L_1D = -cos(q, z')          (eq. 1)
  2D: G = g(F)            G' = g'(F')                       flipped back to the box geometry
      R, R' = align(G, G')                                  RoI (eqs. 3-4), offset (eqs. 5-7), none
      Q = sum sim(R, R) q(R)                                attention predictor    (eqs. 8-9)
      L_2D = -cos(Q, Kmeans(R'))                                                    (eq. 10)
  L = lambda L_1D + (1 - lambda) L_2D, averaged over both directions               (eq. 11)
The target is the EMA of the online network (eq. 2), updated after each optimizer step
(apply_update; train/loop.py takes the gradient of forward's loss).
`method: byol` keeps the 1D branch only; `multisiam_moco` is App. B.2 (MultiSiamMoCo).
`build(config)` makes the model of `config.model.method`.
"""

import keras
import tensorflow as tf

from multisiam_tf.models import align
from multisiam_tf.models import heads
from multisiam_tf.models import kmeans as kmeans_lib
from multisiam_tf.models import losses
from multisiam_tf.models import resnet
from multisiam_tf.models import target as target_lib

# Plain TF with no data-dependent Python control flow: AutoGraph would only add tracing time.
_plain_graph = tf.autograph.experimental.do_not_convert


class MultiSiam(keras.Model):
  """Online network (trained) and target network (EMA of the online one), per config.model."""

  # The float32 scalars of forward's metrics and of apply_update, which the training loop carries.
  METRICS = ('loss', 'loss_1d', 'loss_2d', 'fallback_rate', 'projection_std', 'tau', 'lr')

  def __init__(self, config, **kwargs):
    super().__init__(name='multisiam', **kwargs)
    self.config = config
    m = config.model
    self.two_d = m.method != 'byol'
    hidden, out, sync_bn = m.head.hidden_dim, m.head.output_dim, m.backbone.sync_bn
    self.online_backbone = _backbone(m.backbone, 'online_backbone')
    self.target_backbone = _backbone(m.backbone, 'target_backbone')
    self.online_projector = heads.mlp(hidden, out, 'online_projector', sync_bn)
    self.target_projector = heads.mlp(hidden, out, 'target_projector', sync_bn)
    if self.two_d:
      self.online_projector_2d = heads.mlp(hidden, out, 'online_projector_2d', sync_bn)
      self.target_projector_2d = heads.mlp(hidden, out, 'target_projector_2d', sync_bn)
    self._build_online_only()

  def _build_online_only(self):
    """The predictors p (1D) and q with attention (2D, eqs. 8-9), which the target lacks."""
    m = self.config.model
    hidden, out, sync_bn = m.head.hidden_dim, m.head.output_dim, m.backbone.sync_bn
    self.predictor = heads.mlp(hidden, out, 'predictor', sync_bn)
    if self.two_d:
      self.predictor_2d = heads.AttentionPredictor(
          hidden, out, power=m.attention.power, residual=m.attention.residual,
          enabled=m.attention.enabled, sync_bn=sync_bn, name='predictor_2d')

  def _online_modules(self):
    modules = [self.online_backbone, self.online_projector, self.predictor]
    return modules + ([self.online_projector_2d, self.predictor_2d] if self.two_d else [])

  @property
  def online_variables(self):
    return [v for module in self._online_modules() for v in module.trainable_variables]

  def target_pairs(self):
    """(target, online) modules whose weights the EMA ties together (eq. 2)."""
    pairs = [(self.target_backbone, self.online_backbone),
             (self.target_projector, self.online_projector)]
    if self.two_d:
      pairs.append((self.target_projector_2d, self.online_projector_2d))
    return pairs

  def build_variables(self):
    """Creates every variable with one forward pass and copies online weights into the target."""
    self.forward(_dummy_batch(self.config.data.image_size), training=False)
    for target, online in self.target_pairs():
      for t, o in zip(target.weights, online.weights):
        t.assign(o)

  # Forward.

  def _encode(self, view, flip, training):
    """Both networks on one view: online {z, G} and target {z', G'}, the maps flipped back to
    the geometry of the view's box."""
    f, f_t, online, target = self._encode_global(view, training)
    if self.two_d:
      online['g'] = align.flip_back(self.online_projector_2d(f, training=training), flip)
      target['g'] = tf.stop_gradient(
          align.flip_back(self.target_projector_2d(f_t, training=training), flip))
    return online, target

  def _encode_global(self, view, training):
    """(F, F', online {z}, target {z'}): C5 maps and projections z = h(pool F) (eq. 1)."""
    f = self.online_backbone(view, training=training)['c5']
    f_t = tf.stop_gradient(self.target_backbone(view, training=training)['c5'])
    online = {'z': self.online_projector(tf.reduce_mean(f, axis=[1, 2]), training=training)}
    target = {'z': tf.stop_gradient(
        self.target_projector(tf.reduce_mean(f_t, axis=[1, 2]), training=training))}
    return f, f_t, online, target

  def _direction(self, online, target, box_a, box_b, training):
    """View a online, view b target: L_1D (eq. 1) and L_2D (eqs. 3-10, or eq. 15)."""
    out = {'loss_1d': losses.negative_cosine(self.predictor(online['z'], training=training),
                                             target['z'])}
    if not self.two_d:
      return out
    r, r_t = self._align(tf.cast(online['g'], tf.float32), tf.cast(target['g'], tf.float32),
                         box_a, box_b)
    q_map = self.predictor_2d(r, training=training)
    km = self.config.model.kmeans
    if not km.enabled:
      out['loss_2d'] = losses.negative_cosine(q_map, r_t)  # eq. 15
      return out
    centroids, assignment = kmeans_lib.kmeans(r_t, km.k, km.iterations, km.metric)
    out['assignment'] = assignment
    if km.dense:
      out['loss_2d'] = losses.dense_cluster_loss(q_map, r_t, assignment)
    else:
      out['loss_2d'] = losses.negative_cosine(q_map, centroids)  # eq. 10
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

  @_plain_graph
  def forward(self, batch, training):
    """Both directions of the symmetrised loss (eq. 11): (metrics, per-direction results)."""
    encoded = [self._encode(batch[f'view{i}'], batch[f'flip{i}'], training) for i in (1, 2)]
    results = [self._direction(encoded[a][0], encoded[b][1], batch[f'box{a + 1}'],
                               batch[f'box{b + 1}'], training) for a, b in ((0, 1), (1, 0))]
    l_1d = (results[0]['loss_1d'] + results[1]['loss_1d']) / 2
    if self.two_d:
      l_2d, lam = (results[0]['loss_2d'] + results[1]['loss_2d']) / 2, self.config.model.loss_lambda
    else:
      l_2d, lam = tf.zeros([]), 1.0
    z = tf.math.l2_normalize(tf.cast(encoded[0][0]['z'], tf.float32), axis=-1)
    metrics = {
        'loss': losses.total_loss(l_1d, l_2d, lam), 'loss_1d': l_1d, 'loss_2d': l_2d,
        'fallback_rate': tf.reduce_mean(tf.cast(batch['fallback'], tf.float32)),
        # Near 0 means collapse; 1/sqrt(D) for well-spread projections (BYOL §3.2 monitoring).
        'projection_std': tf.reduce_mean(tf.math.reduce_std(z, axis=0)),
    }
    return metrics, results

  def call(self, images, training=False):
    """The online backbone's endpoints: what downstream tasks use."""
    return self.online_backbone(images, training=training)

  # Training.

  @_plain_graph
  def apply_update(self, grads):
    """One optimizer step on the online weights, then the EMA target update (eq. 2)."""
    self.optimizer.apply(grads, self.online_variables)
    tau = target_lib.target_momentum(self.optimizer.iterations, self.config.train.steps,
                                     self.config.optim.tau_base)
    self.update_target(tau)
    return {'tau': tf.cast(tau, tf.float32),
            'lr': tf.cast(self.optimizer.learning_rate, tf.float32)}

  @_plain_graph
  def update_target(self, tau):
    """xi <- tau xi + (1 - tau) theta over every target weight (eq. 2)."""
    target_lib.ema_update([(t, o) for target, online in self.target_pairs()
                           for t, o in zip(target.trainable_variables,
                                           online.trainable_variables)], tau)

  @_plain_graph
  def cluster_maps(self, batch):
    """K-means assignment [B, h, w] of the target map of view 1 seen from view 2 (TensorBoard)."""
    _, results = self.forward(batch, training=False)
    return results[1].get('assignment')

  @_plain_graph
  def projections(self, view, flip):
    """Online projections of one view in inference mode (TensorBoard histograms): z [B, D] and,
    with a 2D projector, G [B, h, w, D]."""
    online, _ = self._encode(view, flip, training=False)
    return {k: online[k] for k in ('z', 'g') if k in online}


class MultiSiamMoCo(MultiSiam):
  """MoCo-based MultiSiam (App. B.2): RoI alignment on F before the projectors, attention in the
  online projector (eq. 18), K-means on G' (eq. 19), per-pixel InfoNCE against a queue of other
  images' mean keys (DenseCL's dense queue); the 1D branch is MoCo's global InfoNCE."""

  def _build_online_only(self):
    """No predictor (the queries are the online projections); queues of negative keys instead."""
    self.queue_1d = self._queue('queue_1d', 1)
    self.queue_2d = self._queue('queue_2d', 2)

  def _queue(self, name, index):
    m = self.config.model
    queue = target_lib.initial_queue(m.moco.queue_size, m.head.output_dim,
                                     [self.config.seed, index])
    return self.add_weight(name=name, shape=queue.shape, initializer=lambda *_, **__: queue,
                           trainable=False)

  def _online_modules(self):
    return [self.online_backbone, self.online_projector, self.online_projector_2d]

  def _encode(self, view, flip, training):
    """Online {z, F} and target {z', F'}: the C5 maps themselves, flipped back."""
    f, f_t, online, target = self._encode_global(view, training)
    online['f'], target['f'] = align.flip_back(f, flip), align.flip_back(f_t, flip)
    return online, target

  @_plain_graph
  def forward(self, batch, training):
    """MultiSiam's forward; in training, the target keys it used then enter the queues (as in
    MoCo's own forward), the newest of every replica in front."""
    metrics, results = super().forward(batch, training)
    if training:
      for queue, key in ((self.queue_1d, 'keys_1d'), (self.queue_2d, 'keys_2d')):
        target_lib.push(queue, tf.concat([tf.cast(r[key], tf.float32) for r in results], axis=0))
    return metrics, results

  def _direction(self, online, target, box_a, box_b, training):
    """Global InfoNCE (1D) and per-pixel InfoNCE on K-means positives (eqs. 16-21)."""
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


MODELS = {'multisiam': MultiSiam, 'byol': MultiSiam, 'multisiam_moco': MultiSiamMoCo}


def build(config):
  """The model of config.model.method with every variable created, its target a copy of the
  online network."""
  model = MODELS[config.model.method](config)
  model.build_variables()
  return model


def _backbone(b, name):
  return resnet.ResNet(b.depth, b.width, b.output_stride, sync_bn=b.sync_bn, name=name)


def _dummy_batch(size):
  views = tf.zeros([2, size, size, 3])
  boxes = tf.constant([[0.0, 0.0, 1.0, 1.0]] * 2)
  flips = tf.zeros([2], tf.bool)
  return {'view1': views, 'view2': views, 'box1': boxes, 'box2': boxes, 'flip1': flips,
          'flip2': flips, 'fallback': flips}
