"""The SavedModel loaded back: both signatures, the Hub interface, warm-up, saved_model_cli."""

import io
import os
import subprocess
import sys

import keras
import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from multisiam_tf.export import serving

from export_testlib import IMAGE_SIZE, assert_outputs_close, reference

CLI = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')


def _encode(pixels, fmt):
  buffer = io.BytesIO()
  PIL.Image.fromarray(pixels).save(buffer, format=fmt)
  return buffer.getvalue()


def _random_pixels(rng, height=IMAGE_SIZE, width=IMAGE_SIZE):
  return rng.integers(0, 256, (height, width, 3)).astype(np.uint8)


def test_features_signature_matches_keras(backbone, loaded):
  images = np.random.default_rng(1).uniform(0, 255, (2, 37, 45, 3)).astype(np.float32)
  outputs = loaded.signatures['features'](images=tf.constant(images))
  assert_outputs_close(outputs, reference(backbone, images))


def test_serving_default_png_and_jpeg_match_keras(backbone, loaded):
  rng = np.random.default_rng(2)
  png_pixels, jpeg_pixels = _random_pixels(rng), _random_pixels(rng)
  jpeg = _encode(jpeg_pixels, 'JPEG')
  outputs = loaded.signatures['serving_default'](
      image_bytes=tf.constant([_encode(png_pixels, 'PNG'), jpeg]))
  # JPEG is lossy: the reference takes the pixels TF's decoder (the graph's) gives.
  decoded_jpeg = tf.io.decode_jpeg(jpeg, channels=3).numpy()
  assert np.abs(decoded_jpeg.astype(int) - jpeg_pixels).max() > 0  # the loss is real
  assert_outputs_close(outputs, reference(backbone, np.stack([png_pixels, decoded_jpeg])))


def test_serving_default_resizes_bilinear(backbone, loaded):
  pixels = _random_pixels(np.random.default_rng(3), 20, 26)
  outputs = loaded.signatures['serving_default'](image_bytes=tf.constant([_encode(pixels, 'PNG')]))
  # Upsampling: the antialiased bilinear resize is PIL's bilinear filter, channel by channel.
  resized = np.stack([np.asarray(PIL.Image.fromarray(pixels[..., c].astype(np.float32), 'F')
                                 .resize((IMAGE_SIZE, IMAGE_SIZE), PIL.Image.BILINEAR))
                      for c in range(3)], axis=-1)
  assert_outputs_close(outputs, reference(backbone, resized[None]))


def test_reusable_saved_model_interface(backbone, loaded):
  images = np.random.default_rng(4).uniform(0, 1, (2, 33, 41, 3)).astype(np.float32)
  assert_outputs_close(loaded(tf.constant(images), training=False),
                       reference(backbone, images * 255.0))
  assert len(loaded.variables) == len(backbone.weights)
  assert len(loaded.trainable_variables) == len(backbone.trainable_weights)
  assert list(loaded.regularization_losses) == []


@pytest.mark.parametrize('signature, value', [
    ('serving_default', [b'not an image at all']),
    ('serving_default', b'a scalar, not a batch'),
    ('features', np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)),
    ('features', np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 4), np.float32)),
])
def test_bad_input_is_invalid_argument(loaded, signature, value):
  function = loaded.signatures[signature]
  (name,) = function.structured_input_signature[1]
  with pytest.raises(tf.errors.InvalidArgumentError):
    function(**{name: tf.constant(value)})


def _read_warmup(saved_model_dir):
  """(signature, input name, tensor) of each warm-up record, decoded by TF's proto parser."""
  source = b'bytes://' + serving.prediction_log_descriptors().SerializeToString()

  def field(messages, message_type, name):
    values = tf.io.decode_proto(messages, message_type, [name], [tf.string],
                                descriptor_source=source).values[0]
    return values[0]  # one message in, the first value of the field out

  requests = []
  for record in tf.data.TFRecordDataset(os.path.join(saved_model_dir, serving.WARMUP_FILE)):
    log = field([record], 'tensorflow.serving.PredictionLog', 'predict_log')
    request = field([log[0]], 'tensorflow.serving.PredictLog', 'request')
    spec = field([request[0]], 'tensorflow.serving.PredictRequest', 'model_spec')
    signature = field([spec[0]], 'tensorflow.serving.ModelSpec', 'signature_name')
    (entry,) = field([request[0]], 'tensorflow.serving.PredictRequest', 'inputs').numpy()
    key = field([entry], 'tensorflow.serving.PredictRequest.InputsEntry', 'key')
    value = field([entry], 'tensorflow.serving.PredictRequest.InputsEntry', 'value')
    requests.append((signature[0].numpy().decode(), key[0].numpy().decode(), value[0]))
  return requests


def test_warmup_requests_read_back_and_run(loaded, saved_model_dir):
  requests = _read_warmup(saved_model_dir)
  assert {signature for signature, _, _ in requests} == {'serving_default', 'features'}
  for signature, name, tensor_proto in requests:
    function = loaded.signatures[signature]
    value = tf.io.parse_tensor(tensor_proto, function.structured_input_signature[1][name].dtype)
    outputs = function(**{name: value})
    assert outputs['pooled'].shape[0] == value.shape[0] and np.isfinite(outputs['pooled']).all()


def test_warmup_parses_as_tensorflow_serving_prediction_log(saved_model_dir):
  prediction_log_pb2 = pytest.importorskip(
      'tensorflow_serving.apis.prediction_log_pb2',
      reason='tensorflow-serving-api is not installed (it requires the `tensorflow` wheel)')
  for record in tf.data.TFRecordDataset(os.path.join(saved_model_dir, serving.WARMUP_FILE)):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    assert log.WhichOneof('log_type') == 'predict_log'
    assert log.predict_log.request.model_spec.name == 'tiny'
    assert log.predict_log.request.model_spec.signature_name in ('serving_default', 'features')


def test_saved_model_cli_shows_and_runs(backbone, saved_model_dir, tmp_path):
  shown = subprocess.run([CLI, 'show', '--dir', saved_model_dir, '--all'], check=True,
                         capture_output=True, text=True).stdout
  for text in ("signature_def['serving_default']", "inputs['image_bytes']",
               "signature_def['features']", "inputs['images']", "outputs['pooled']",
               "Function Name: '__call__'"):
    assert text in shown
  image = np.random.default_rng(5).integers(0, 256, (1, 8, 12, 3)).astype(np.float32)
  subprocess.run([CLI, 'run', '--dir', saved_model_dir, '--tag_set', 'serve',
                  '--signature_def', 'features', '--input_exprs', f'images={image.tolist()}',
                  '--outdir', str(tmp_path)], check=True, capture_output=True)
  expected = reference(backbone, image)
  for name in ('c5', 'pooled'):
    np.testing.assert_allclose(np.load(tmp_path / f'{name}.npy'), expected[name], atol=1e-4)


def test_export_refuses_to_overwrite(backbone, saved_model_dir):
  with pytest.raises(FileExistsError):
    serving.export_saved_model(backbone, saved_model_dir)


def test_hub_keras_layer_fine_tunes(backbone, saved_model_dir):
  hub = pytest.importorskip('tensorflow_hub', reason='the model-garden extra brings TF Hub')
  tf_keras = pytest.importorskip('tf_keras', reason='the model-garden extra brings tf-keras')
  layer = hub.KerasLayer(saved_model_dir, trainable=True)
  inputs = tf_keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
  model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(layer(inputs)['pooled']))
  assert len(layer.trainable_weights) == len(backbone.trainable_weights)
  images = np.random.default_rng(6).uniform(0, 1, (4, IMAGE_SIZE, IMAGE_SIZE, 3))
  np.testing.assert_allclose(layer(images.astype(np.float32), training=False)['pooled'],
                             reference(backbone, images * 255.0)['pooled'], atol=1e-4)
  before = [w.numpy() for w in layer.weights]
  model.compile(tf_keras.optimizers.SGD(0.1),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(images, np.array([0, 1, 0, 1]), batch_size=4, epochs=1, verbose=0)
  # Every backbone variable moved: kernels by gradients, BN statistics by the training pass.
  assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, layer.weights))


def test_keras3_tfsm_layer_fine_tunes(backbone, saved_model_dir):
  layer = keras.layers.TFSMLayer(saved_model_dir, call_endpoint='__call__',
                                 call_training_endpoint='call_training', trainable=True)
  inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
  model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)['pooled']))
  assert len(layer.trainable_weights) == len(backbone.trainable_weights)
  images = np.random.default_rng(7).uniform(0, 1, (4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(
      np.float32)
  np.testing.assert_allclose(layer(images)['pooled'], reference(backbone, images * 255.0)['pooled'],
                             atol=1e-4)
  before = [w.numpy() for w in layer.weights]
  model.compile(keras.optimizers.SGD(0.1),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(images, np.array([0, 1, 0, 1]), batch_size=4, epochs=1, verbose=0)
  # Kernels moved by gradients, BN statistics by the training endpoint's batch statistics.
  assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, layer.weights))


@pytest.mark.parametrize('signature, value, message', [
    ('features', np.full((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.nan, np.float32), 'NaN or Inf'),
    ('features', np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32), 'the batch is empty'),
    ('features', np.zeros((1, 0, 0, 3), np.float32), r'size \(height, width\).*\[0 0\].*no pixels'),
    ('serving_default', np.zeros((0,), object), 'the batch is empty'),
])
def test_degenerate_input_is_invalid_argument_saying_why(loaded, signature, value, message):
  function = loaded.signatures[signature]
  (name,) = function.structured_input_signature[1]
  value = tf.constant(value, tf.string) if signature == 'serving_default' else tf.constant(value)
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    function(**{name: value})


def test_bad_bytes_name_the_element(loaded):
  good = _encode(_random_pixels(np.random.default_rng(0)), 'PNG')
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'image_bytes element\] \[1\] \[is no'):
    loaded.signatures['serving_default'](image_bytes=tf.constant([good, b'GARBAGE!', good]))
