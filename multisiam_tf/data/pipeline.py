"""The training input: files -> checked bytes -> IoU-constrained view pairs -> augmented batches.

One pass over this input pipeline's files (sharded by file, shuffled, read, shuffled, checked) is
repeated forever; each element then gets its stateless seed from (seed, input pipeline, element
index, key), so the stream is the same for the same seed, however many threads map it.
"""

import contextlib

from absl import logging
import tensorflow as tf

from multisiam_tf.data import augment
from multisiam_tf.data import sources
from multisiam_tf.data import views

SERVICE_JOB = 'multisiam_train'  # consumers sharing a job get disjoint batches


def make_dataset(config, *, seed, input_context=None, batch_size=None, skipped=None):
  """An endless tf.data.Dataset of view-pair batches for one input pipeline.

  Args:
    config: the experiment config; reads `data.*` and `train.batch_size`.
    seed: int; the same seed gives the same batches.
    input_context: a tf.distribute.InputContext: this pipeline reads only its share of the files
      and batches get_per_replica_batch_size(global batch).
    batch_size: the global batch; defaults to config.train.batch_size.
    skipped: with data.skip_corrupt, an int64 tf.Variable that counts the inputs skipped (not
      with data.service_address: the tf.data workers would hold the count).

  Returns:
    A dataset of dicts: `view1`, `view2` float32 [B, S, S, 3] normalised; `box1`, `box2` float32
    [B, 4] `[y1, x1, y2, x2]` of the original image, unflipped; `flip1`, `flip2`, `fallback`
    bool [B].
  """
  data = config.data
  inputs = sources.from_config(data)
  batch = batch_size or config.train.batch_size
  sharded = input_context is not None and not data.service_address
  if input_context is not None:
    batch = input_context.get_per_replica_batch_size(batch)
  if sharded:
    inputs = inputs._replace(files=shard_files(inputs.files, input_context))
  pipeline_id = input_context.input_pipeline_id if sharded else 0
  logging.info('data: %d %s files for input pipeline %d', len(inputs.files), inputs.format,
               pipeline_id)
  ds = make_examples(data, inputs, seed=seed, pipeline_id=pipeline_id, skipped=skipped)
  ds = ds.batch(batch, drop_remainder=True)
  if data.service_address:
    # Dynamic sharding hands each file to one tf.data worker per epoch; 'parallel_epochs' would
    # have every worker run this same seeded pipeline and send identical batches.
    ds = ds.apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
        service=data.service_address, job_name=SERVICE_JOB))
  options = tf.data.Options()
  options.deterministic = True
  if skipped is not None:  # the count is not the input position: a checkpoint leaves it out
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
  if sharded:  # already sharded by file above; tf.distribute must not shard it again
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def make_examples(data, inputs, *, seed, pipeline_id=0, with_source=False, skipped=None):
  """The endless, unbatched stream of training examples that make_dataset batches.

  Args:
    data: the `data` part of the config.
    inputs: sources.Inputs, the files of this input pipeline.
    seed: int; with `pipeline_id`, fixes the order and every random choice.
    pipeline_id: int, mixed into the per-example seeds so pipelines draw differently.
    with_source: also yield each example's key and encoded bytes (to show the original image).
    skipped: see make_dataset.

  Returns:
    A dataset of example dicts (see make_pair), or of (key, encoded, example) with_source.
  """
  # Without skip_corrupt, the header checks run in the same function as the decoding (one
  # parallel map fewer per image than a separate checking map); an Assert still stops
  # the stream at a bad input, naming it, before anything decodes it.
  check_here = not data.skip_corrupt
  examples = (_read_pass(inputs, data, seed=seed) if check_here
              else skipping_pass(inputs, data, seed=seed, skipped=skipped)).repeat()
  base_seed = tf.constant([seed, pipeline_id], tf.int64)

  def to_example(index, source):
    if check_here:
      source = _assert_good(*source, data.min_image_size)
    key, encoded = source
    example = make_pair(encoded, example_seed(base_seed, index, key), data)
    output = (key, encoded, example) if with_source else example
    return (index, output) if data.skip_corrupt else output  # the index finds dropped ones
  ds = examples.enumerate().map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
  if data.skip_corrupt:  # what the header checks cannot see, the decoders catch: logged, dropped
    ds = _count_dropped(ds.ignore_errors(log_warning=True), skipped)
  return ds.concatenate(_no_examples_error(ds.element_spec, len(inputs.files), data.path))


@contextlib.contextmanager
def data_loss_as_such():
  """Re-raises the stream's error for a truncated TFRecord as tf.errors.DataLossError, its
  message (which names the file) kept: a graph's Assert raises only InvalidArgumentError."""
  try:
    yield
  except tf.errors.InvalidArgumentError as e:
    if sources.TRUNCATED not in e.message:
      raise
    raise tf.errors.DataLossError(e.node_def, e.op, e.message) from e


def _count_dropped(ds, total=None):
  """The examples of (index, example) elements, logging each run of them that ignore_errors
  dropped, seen as a gap in the indices (the order is deterministic), its length added to
  `total` if given."""
  def count(last, element):
    gap = element[0] - last - 1

    def report():
      tf.print(tf.strings.join(['data: skipped ', tf.strings.as_string(gap),
                                ' input(s) that failed to decode (the error is logged above)']),
               output_stream=logging.warning)
      if total is not None:
        total.assign_add(gap)
      return gap
    with tf.control_dependencies([tf.cond(gap > 0, report, lambda: gap)]):
      return element[0], tf.nest.map_structure(tf.identity, element[1])
  return ds.scan(tf.constant(-1, tf.int64), count)


def shard_files(files, input_context):
  """This input pipeline's files: every num_input_pipelines-th, disjoint across pipelines."""
  count = input_context.num_input_pipelines
  if len(files) < count:
    raise ValueError(f'data.path has {len(files)} input files for {count} input pipelines; '
                     'sharding by file needs at least one file per pipeline')
  return tuple(files[input_context.input_pipeline_id::count])


def skipping_pass(inputs, data, *, seed, skipped=None):
  """One shuffled pass over `inputs` (sources.Inputs) as (key, encoded) pairs, data.skip_corrupt's:
  a bad input (sources.problem) is logged by name and dropped, counted in `skipped` (a
  tf.Variable) if given; the pass' end then logs how many it skipped."""
  return _skip_bad(_read_pass(inputs, data, seed=seed), data.min_image_size, skipped)


def _read_pass(inputs, data, *, seed):
  """One shuffled pass over `inputs` as (key, encoded, what the reader found wrong)."""
  files = list(inputs.files)
  ds = tf.data.Dataset.from_tensor_slices(files)
  ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  ds = sources.read(ds, inputs)
  if inputs.format != 'folder' and data.shuffle_buffer > 1:  # a folder's file shuffle is complete
    ds = ds.shuffle(data.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  return ds


def _assert_good(key, encoded, read_problem, min_image_size):
  problem = sources.problem(encoded, read_problem, min_image_size)
  check = tf.debugging.Assert(
      tf.equal(problem, ''),
      ['data: cannot use', key, problem, '(data.skip_corrupt=True skips such inputs)'])
  with tf.control_dependencies([check]):
    return key, tf.identity(encoded)


def _skip_bad(ds, min_image_size, total=None):
  """Drops inputs that fail sources.problem, logging each by name with a running count, and at
  an end sentinel the pass' count (when not 0); each skip is also added to `total` if given."""
  ds = ds.map(lambda key, encoded, read_problem: (
      key, encoded, sources.problem(encoded, read_problem, min_image_size), False),
              num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.concatenate(tf.data.Dataset.from_tensors(('', '', '', True)))

  def count(skipped, element):
    key, _, problem, end = element
    bad = tf.not_equal(problem, '') & tf.logical_not(end)
    skipped += tf.cast(bad, tf.int64)

    def report():
      tf.print(tf.strings.join(['data: skipping ', key, ': ', problem, ' (',
                                tf.strings.as_string(skipped), ' skipped so far in this pass)']),
               output_stream=logging.warning)
      if total is not None:
        total.assign_add(1)
      return bad

    def report_pass():
      tf.print(tf.strings.join(['data: this pass skipped ', tf.strings.as_string(skipped),
                                ' inputs']), output_stream=logging.warning)
      return end
    dropped = tf.cond(bad, report, lambda: bad) | tf.cond(end & (skipped > 0), report_pass,
                                                           lambda: end)
    return skipped, (element[:2], dropped)

  ds = ds.scan(tf.constant(0, tf.int64), count)
  return ds.filter(lambda element, dropped: ~dropped).map(lambda element, _: element)


def _no_examples_error(element_spec, num_files, path):
  """Raises when reached: the repeated stream ends only when a whole pass gave no usable image."""
  def fail(_):
    check = tf.debugging.Assert(False, [
        f'data: a pass over the {num_files} input files of data.path={path!r} gave no usable '
        'image (empty TFRecords, or every input skipped as corrupt: see the log)'])
    with tf.control_dependencies([check]):
      return tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), element_spec)
  return tf.data.Dataset.range(1).map(fail)


def example_seed(base_seed, index, key):
  """A stateless [2] seed per element: distinct across elements, pipelines and tf.data workers."""
  key_hash = tf.strings.to_hash_bucket_fast(key, 2**62)
  return tf.random.fold_in(tf.random.fold_in(base_seed, index), key_hash)


def make_pair(encoded, seed, data):
  """The training example of one encoded image: two augmented views with their boxes and flips.

  The views are mirrored while they are resized (free on the DCT-scaled path), so the
  augmentations are drawn first and applied without their flip.
  """
  view_seed, seed1, seed2 = tf.unstack(tf.random.split(seed, 3))
  params1 = augment.sample_augmentation(seed1, 1, data.color_strength)
  params2 = augment.sample_augmentation(seed2, 2, data.color_strength)
  pair = views.make_views(
      encoded, view_seed, image_size=data.image_size, iou_threshold=data.iou_threshold,
      max_pair_tries=data.max_pair_tries, pair_candidates=data.pair_candidates,
      area_range=tuple(data.area_range), aspect_ratio_range=tuple(data.aspect_ratio_range),
      decode_and_crop=data.decode_and_crop, max_decode_ratio=data.max_decode_ratio,
      flips=(params1['flip'], params2['flip']))
  view1 = augment.apply_augmentation(pair['view1'], params1, apply_flip=False)
  view2 = augment.apply_augmentation(pair['view2'], params2, apply_flip=False)
  return {'view1': view1, 'view2': view2, 'box1': pair['box1'], 'box2': pair['box2'],
          'flip1': params1['flip'], 'flip2': params2['flip'], 'fallback': pair['fallback']}
