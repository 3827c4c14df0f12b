"""Whole tiny runs in this process: config, checkpoints, logs, images, the NaN guard, SIGTERM."""

import io
import json
import os
import signal
import threading

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from multisiam_tf.train import checkpoints
from multisiam_tf.train import distribute
from multisiam_tf.train import loop
from multisiam_tf.train import schedules
from multisiam_tf.train import summaries

METRICS = ('loss', 'loss_1d', 'loss_2d', 'tau', 'lr', 'fallback_rate', 'projection_std',
           'images_per_sec')


def _checkpoint_steps(workdir):
  state = tf.train.get_checkpoint_state(os.path.join(workdir, checkpoints.CHECKPOINTS))
  return [int(p.rsplit('-', 1)[1]) for p in state.all_model_checkpoint_paths]


def test_run_writes_config_checkpoints_and_scalars(reference_run, read_events):
  workdir, model = reference_run
  with open(os.path.join(workdir, checkpoints.CONFIG)) as f:
    assert json.load(f)['train']['steps'] == 6
  assert _checkpoint_steps(workdir) == [2, 4, 6]  # keep_checkpoints=3
  assert int(model.optimizer.iterations.numpy()) == 6
  events = read_events(os.path.join(workdir, summaries.EVENTS))
  for name in METRICS:
    assert sorted(events[name]) == [1, 2, 3, 4, 5, 6], name
    assert all(np.isfinite(v) for v in events[name].values()), name
  assert events['lr'][6] == pytest.approx(0.0, abs=1e-6)  # cosine ends at 0
  assert events['tau'][1] == pytest.approx(0.996, abs=2e-3)
  assert len(set(events['loss'].values())) == 6


def test_images_show_views_and_clusters(reference_run, read_events):
  workdir, _ = reference_run
  events = read_events(os.path.join(workdir, summaries.EVENTS))
  for tag in ('view1', 'view2', 'clusters_view1'):
    assert sorted(events[tag]) == [4], tag
    width, height, *pngs = events[tag][4]
    assert (int(width), int(height), len(pngs)) == (32, 32, 2)
    pixels = np.asarray(PIL.Image.open(io.BytesIO(pngs[0])))
    assert pixels.shape == (32, 32, 3) and pixels.std() > 0
  # The overlap box is drawn in pure red on the views.
  views = [np.asarray(PIL.Image.open(io.BytesIO(p))) for p in events['view1'][4][2:]]
  assert any(((v == [255, 0, 0]).all(axis=-1)).sum() >= 4 for v in views)


@pytest.mark.parametrize('poisoned', ['learning_rate', 'weight'])
def test_non_finite_update_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    image_folder, tiny, tmp_path, monkeypatch, poisoned):
  """A NaN the network cannot scrub (the max-pool drops NaN pixels on oneDNN): the learning rate
  of the third update makes every weight NaN, so the fourth update's loss and gradient norm are
  NaN; or the third update's gradient of one weight is NaN (its loss is still finite)."""
  if poisoned == 'learning_rate':
    learning_rate = schedules.learning_rate
    monkeypatch.setattr(schedules, 'learning_rate', lambda step, *args: tf.where(
        tf.equal(step, 2), np.nan, learning_rate(step, *args)))
    expected = r'loss nan, grad_norm nan at step 4\b.*ckpt-2'
  else:
    forward = loop.multisiam.MultiSiam.forward

    def nan_gradient_in_third_update(self, batch, training):
      metrics, results = forward(self, batch, training)
      if training:
        third = tf.equal(self.optimizer.iterations, 2)

        @tf.custom_gradient
        def zero_with_nan_gradient_in_third(weight):
          return tf.zeros([]), lambda _: tf.where(third, np.nan, tf.zeros_like(weight))
        metrics['loss'] += zero_with_nan_gradient_in_third(self.online_variables[0])
      return metrics, results
    monkeypatch.setattr(loop.multisiam.MultiSiam, 'forward', nan_gradient_in_third_update)
    expected = r'loss -?\d[^,]*, grad_norm nan at step 3\b.*ckpt-2'
  workdir = str(tmp_path)
  with pytest.raises(FloatingPointError, match=expected):
    loop.train(tiny(image_folder), workdir, distribute.make_strategy('default'))
  assert _checkpoint_steps(workdir) == [2]


def test_sigterm_saves_a_checkpoint_and_raises_preempted(image_folder, tiny, tmp_path):
  default_handler = signal.getsignal(signal.SIGTERM)

  def terminate_once_handled():
    while signal.getsignal(signal.SIGTERM) is default_handler:
      threading.Event().wait(0.05)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=terminate_once_handled, daemon=True).start()
  # In epochs: 25 epochs of 8 images at batch 2 are 100 steps.
  config = tiny(image_folder, epochs=25, checkpoint_every=50, image_every=100)
  with pytest.raises(loop.Preempted) as preempted:
    loop.train(config, str(tmp_path), distribute.make_strategy('default'))
  stopped = preempted.value.step
  assert 1 <= stopped < 100
  with open(os.path.join(tmp_path, checkpoints.CONFIG)) as f:
    written = json.load(f)
  assert (written['train']['steps'], written['train']['epochs']) == (100, None)
  assert written['optim']['warmup_steps'] == 1
  assert _checkpoint_steps(str(tmp_path)) == [stopped]
  assert signal.getsignal(signal.SIGTERM) is default_handler


def test_epochs_without_num_examples_count_the_source_once(image_folder, tiny_config, tmp_path):
  config = tiny_config(overrides={'data.path': image_folder, 'data.num_examples': 0,
                                  'train.epochs': 1.0})
  workdir = str(tmp_path)
  loop.train(config, workdir, distribute.make_strategy('default'))
  with open(os.path.join(workdir, checkpoints.CONFIG)) as f:
    written = json.load(f)
  assert written['train']['steps'] == 8 // 2  # 8 images, batch 2, one epoch
  with open(os.path.join(workdir, 'num_examples.json')) as f:
    assert json.load(f)['num_examples'] == 8


def test_a_run_in_steps_does_not_count_the_source(image_folder, tiny_config, tmp_path):
  config = tiny_config(overrides={'data.path': image_folder, 'data.num_examples': 0,
                                  'train.steps': 4, 'optim.warmup_steps': 1})
  assert loop._with_num_examples(config, str(tmp_path)).data.num_examples == 0
  assert not os.listdir(tmp_path)


def _tensorboard_events(workdir):
  """TensorBoard's own reader on the run's events, every record kept."""
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(workdir, summaries.EVENTS), size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  return accumulator


def test_tensorboard_reads_scalars_images_histograms_and_hparams(reference_run):
  accumulator = _tensorboard_events(reference_run[0])
  by_plugin = {plugin: set(accumulator.PluginTagToContent(plugin))
               for plugin in ('scalars', 'images', 'histograms', 'hparams')}
  assert set(METRICS) <= by_plugin['scalars']
  assert by_plugin['images'] == {'view1', 'view2', 'clusters_view1'}
  assert by_plugin['histograms'] == {'projection_z', 'projection_g'}
  assert [e.step for e in accumulator.Tensors('loss')] == [1, 2, 3, 4, 5, 6]
  (z,) = accumulator.Tensors('projection_z')
  buckets = tf.make_ndarray(z.tensor_proto)  # [k, 3]: left edge, right edge, count
  assert z.step == 4 and buckets[:, 2].sum() == 2 * 32  # 2 views' projections of 32 dims
  content = accumulator.PluginTagToContent('hparams')
  session = hparams_metadata.parse_session_start_info_plugin_data(
      content[hparams_metadata.SESSION_START_INFO_TAG])
  assert session.hparams['train.steps'].number_value == 6
  assert session.hparams['model.alignment'].string_value == 'offset'
  experiment = hparams_metadata.parse_experiment_plugin_data(
      content[hparams_metadata.EXPERIMENT_TAG])
  assert set(METRICS) <= {m.name.tag for m in experiment.metric_infos}


def test_metrics_jsonl_holds_the_logged_scalars(reference_run):
  workdir, _ = reference_run
  with open(os.path.join(workdir, summaries.METRICS)) as f:
    lines = [json.loads(line) for line in f]
  assert [line['step'] for line in lines] == [1, 2, 3, 4, 5, 6]
  losses = {e.step: float(tf.make_ndarray(e.tensor_proto))
            for e in _tensorboard_events(workdir).Tensors('loss')}
  assert all(set(METRICS) <= set(line) for line in lines)
  assert {line['step']: line['loss'] for line in lines} == pytest.approx(losses, rel=1e-6)


def test_a_resumed_run_log_drops_the_metrics_lines_it_will_write_again(tmp_path):
  path = tmp_path / summaries.METRICS
  path.write_text(''.join(json.dumps({'step': s, 'loss': -s / 10}) + '\n' for s in (2, 4, 6, 8))
                  + '{"step": 10, "lo')  # cut short by a kill
  summaries.RunLog(str(tmp_path), 4, 12, chief=False)  # only the chief writes it
  assert len(path.read_text().splitlines()) == 5
  summaries.RunLog(str(tmp_path), 4, 12, chief=True)
  assert path.read_text().splitlines() == ['{"step": 2, "loss": -0.2}', '{"step": 4, "loss": -0.4}']


def _tfrecord_with_bad_records(image_folder, path):
  """4 of the folder's images and 2 records without image bytes, in one TFRecord file."""
  images = sorted(tf.io.gfile.glob(os.path.join(image_folder, '*')))[:4]
  with tf.io.TFRecordWriter(path) as writer:
    for image in images + ['', '']:
      feature = {'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[tf.io.read_file(image).numpy()]))} if image else {}
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())
  return path


def test_a_truncated_tfrecord_stops_training_with_a_data_loss_error_naming_it(
    image_folder, tiny, tmp_path):
  path = _tfrecord_with_bad_records(image_folder, str(tmp_path / 'part.tfrecord'))
  whole = os.path.getsize(path)
  with open(path, 'r+b') as f:
    f.truncate(whole - 40)  # the two image-less records (18 bytes each) and the last image's end
  config = tiny(path, steps=3, steps_per_loop=1, image_every=100)
  config.data.update(format='tfrecord', num_examples=4)
  with pytest.raises(tf.errors.DataLossError, match=f'{path}:truncated.*truncated TFRecord'):
    loop.train(config, str(tmp_path / 'run'), distribute.make_strategy('default'))


def test_skip_corrupt_totals_are_logged_and_written_as_a_scalar(
    image_folder, tiny, tmp_path, read_events, caplog, capfd):
  path = _tfrecord_with_bad_records(image_folder, str(tmp_path / 'part.tfrecord'))
  config = tiny(path, steps=3, steps_per_loop=1, image_every=100)
  config.data.update(format='tfrecord', skip_corrupt=True, num_examples=4)
  workdir = str(tmp_path / 'run')
  with caplog.at_level('INFO', logger='absl'):  # absl's level, which parsed flags may raise
    loop.train(config, workdir, distribute.make_strategy('default'))
  # 6 images trained: by step 3 at least one whole pass (2 bad records) was read
  events = read_events(os.path.join(workdir, summaries.EVENTS))['skipped_inputs']
  with open(os.path.join(workdir, summaries.METRICS)) as f:
    written = [json.loads(line)['skipped_inputs'] for line in f]
  assert written == [events[s] for s in (1, 2, 3)] and written[-1] >= 2
  assert 'data: this pass skipped 2 inputs' in capfd.readouterr().err
  assert f'data: {int(written[-1])} inputs skipped in this run' in caplog.text


@pytest.mark.parametrize('window, step, hand_overs', [
    ((0, 3), 0, [1, 3]),  # from the start: after the first update
    ((2, 6), 0, [2, 6]),
    ((2, 6), 4, [5, 6]),  # resumed inside the window
    ((2, 6), 6, []),  # resumed past it
])
def test_the_profiler_traces_its_window_from_the_first_hand_over_in_it(
    window, step, hand_overs, tmp_path):
  profiler, seen = summaries.Profiler(window, str(tmp_path)), []
  while (stop := profiler.next_step(step)) is not None:  # the loop's hand-overs
    step = stop
    profiler(None, step)
    seen.append(step)
  assert seen == hand_overs
  traces = tmp_path.glob(f'{summaries.PROFILE}/plugins/profile/*/*.xplane.pb')
  assert bool(list(traces)) == bool(hand_overs)
