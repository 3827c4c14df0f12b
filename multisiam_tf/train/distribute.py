"""The tf.distribute strategy and the mixed-precision policy a run uses.

One driver (`loop.train`) serves every strategy; this module only picks and configures it:
  auto          MirroredStrategy over all local GPUs if there is one, else the default strategy
  default       one device, no distribution
  mirrored      MirroredStrategy over local GPUs, or over every logical CPU device without GPUs
  multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
  tpu           TPUStrategy on the TPU named or at grpc:// `tpu_address` (None: this TPU VM's)
"""

from absl import logging
import keras
import tensorflow as tf

STRATEGIES = ('auto', 'default', 'mirrored', 'multi_worker', 'tpu')
_CPU_BF16_FLAGS = ('amx_bf16', 'avx512_bf16')


def make_strategy(name='auto', tpu_address=None):
  """Returns the tf.distribute.Strategy called `name`; create it before any other TF op."""
  if name not in STRATEGIES:
    raise ValueError(f'unknown strategy {name!r}; known: {", ".join(STRATEGIES)}')
  if name == 'auto':
    name = 'mirrored' if tf.config.list_physical_devices('GPU') else 'default'
  if name == 'default':
    strategy = tf.distribute.get_strategy()
  elif name == 'mirrored':
    # Without GPUs MirroredStrategy would take CPU:0 only; logical CPUs let it run anywhere.
    devices = tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('CPU')
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
  elif name == 'multi_worker':
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  else:
    address = tpu_address or 'local'
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    if address != 'local':  # a remote TPU, as Model Garden's tpu_initialize connects to it
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    strategy = tf.distribute.TPUStrategy(resolver)
  logging.info('strategy %s with %d replica(s)', type(strategy).__name__,
               strategy.num_replicas_in_sync)
  return strategy


def is_chief(strategy):
  """True on the one worker that keeps checkpoints and writes logs (always true on one host)."""
  return strategy.extended.should_checkpoint


def cpu_flags(path='/proc/cpuinfo'):
  """The CPU feature flags of this host (empty where /proc/cpuinfo does not exist)."""
  try:
    with open(path) as f:
      return {flag for line in f if line.startswith('flags') for flag in line.split(':')[1].split()}
  except OSError:
    return set()


def auto_precision(strategy, gpu_capabilities=None, flags=None):
  """bfloat16 where the hardware computes it natively, float16 on older GPUs, else float32.

  `gpu_capabilities` (compute capabilities of the local GPUs) and `flags` (CPU flags) default to
  this host's.
  """
  if isinstance(strategy, tf.distribute.TPUStrategy):
    return 'mixed_bfloat16'
  if gpu_capabilities is None:
    gpu_capabilities = [
        tf.config.experimental.get_device_details(gpu).get('compute_capability', (0, 0))
        for gpu in tf.config.list_physical_devices('GPU')]
  if gpu_capabilities:
    # Ampere (8.0) and later have bfloat16 tensor cores; older ones float16 only.
    return 'mixed_bfloat16' if min(gpu_capabilities) >= (8, 0) else 'mixed_float16'
  flags = cpu_flags() if flags is None else flags
  return 'mixed_bfloat16' if flags & set(_CPU_BF16_FLAGS) else 'float32'


def choose_precision(config_value, strategy):
  """Resolves `train.precision` ('auto' or a policy name) and sets it as Keras' global policy."""
  policy = auto_precision(strategy) if config_value == 'auto' else config_value
  keras.mixed_precision.set_global_policy(policy)
  logging.info('precision policy %s (train.precision=%s)', policy, config_value)
  return policy
