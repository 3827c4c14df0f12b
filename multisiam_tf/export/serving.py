"""The backbone as a SavedModel for TF Serving (feature extraction) and TF Hub (fine-tuning).

Layout (TF Serving's): `saved_models/<name>/<version>/` holding `saved_model.pb`, `variables/`
and `assets.extra/tf_serving_warmup_requests`. Signatures, both with normalisation in the graph:

  serving_default(image_bytes: string [batch])  JPEG/PNG/GIF/BMP bytes -> decoded to RGB, resized
                                                 (bilinear, antialiased) to image_size x image_size
  features(images: float32 [batch, H, W, 3])     RGB in 0-255, any H, W, no resize

each returning float32 `c2`..`c5` (ResNet stages at strides 4..32) and `pooled` (the global
average of c5, [batch, C]). Bad input fails with InvalidArgumentError saying what is wrong: bytes
that are no image (naming the element), a wrong rank or channel count, an empty batch, an image
of 0 pixels, NaN or Inf values. TF Serving's REST `{"instances": [{"b64": "..."}]}` feeds
`serving_default`.

The same object implements TF Hub's Reusable SavedModel interface for `hub.KerasLayer(path,
trainable=True)`: `__call__(images, training)` on float32 RGB in [0, 1] (Hub's image convention)
returning the same dict, `variables`, `trainable_variables` and `regularization_losses`.
Keras 3 loads it with `keras.layers.TFSMLayer(path, call_endpoint='__call__',
call_training_endpoint='call_training', trainable=True)`.
"""

import os

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from multisiam_tf.data import augment
from multisiam_tf.data import views

OUTPUTS = ('c2', 'c3', 'c4', 'c5', 'pooled')
WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')

_IMAGES = tf.TensorSpec([None, None, None, 3], tf.float32, name='images')
_IMAGE_BYTES = tf.TensorSpec([None], tf.string, name='image_bytes')


_IMAGE_MAGIC = (b'\xff\xd8\xff', b'\x89PNG', b'GIF8', b'BM')  # what decode_rgb reads starts so


def _checked(images):
  """`images`, or InvalidArgument for an empty batch, an image of no pixels, NaN or Inf: the
  stem's max-pool would drop NaNs and an empty batch fail deep inside the network."""
  shape = tf.shape(images)
  checks = [
      tf.debugging.Assert(shape[0] > 0, ['the batch is empty: images of shape', shape]),
      tf.debugging.Assert(tf.reduce_all(shape[1:3] > 0),
                          ['images of size (height, width)', shape[1:3], 'have no pixels']),
      tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(images)),
                          ['images hold NaN or Inf values']),
  ]
  with tf.control_dependencies(checks):
    return tf.identity(images)


class FeatureExtractor(tf.train.Checkpoint):
  """The exported root object: serving signatures plus the Reusable SavedModel interface.

  A `tf.train.Checkpoint` rather than a `tf.Module` because the Hub interface needs plain
  `variables` / `trainable_variables` attributes, which tf.Module reserves as properties.
  """

  def __init__(self, backbone, image_size):
    super().__init__()
    self.backbone = backbone
    # The tf.Variables themselves, not Keras' wrappers: TF Serving's session-based loader only
    # restores variables that the object graph reaches as tf.Variables.
    self.variables = [v.value for v in backbone.variables]
    self.trainable_variables = [v.value for v in backbone.trainable_variables]
    self.regularization_losses = []  # weight decay belongs to the fine-tuning model
    self._image_size = int(image_size)

  def _features(self, images, training):
    """Endpoints of float `images` in [0, 1], normalised here as in pretraining."""
    endpoints = self.backbone(augment.normalize(images), training=training)
    outputs = {name: tf.cast(endpoints[name], tf.float32) for name in OUTPUTS[:-1]}
    outputs['pooled'] = tf.reduce_mean(outputs['c5'], axis=[1, 2])
    return outputs

  @tf.function(input_signature=[_IMAGES])
  def features(self, images):
    # Static shapes are folded away at trace time; EnsureShape checks the fed tensor.
    images = _checked(tf.ensure_shape(images, _IMAGES.shape))
    return self._features(images / 255.0, training=False)

  @tf.function(input_signature=[_IMAGE_BYTES])
  def serving_default(self, image_bytes):
    image_bytes = tf.ensure_shape(image_bytes, _IMAGE_BYTES.shape)
    size = self._image_size

    def decode_and_resize(element):
      index, encoded = element
      known = tf.reduce_any([tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)
                             for magic in _IMAGE_MAGIC])
      check = tf.debugging.Assert(known, ['image_bytes element', index, 'is no JPEG, PNG, GIF '
                                          'or BMP image', tf.strings.length(encoded), 'bytes'])
      with tf.control_dependencies([check]):
        pixels = tf.cast(views.decode_rgb(encoded), tf.float32)
      return tf.image.resize(pixels, [size, size], 'bilinear', antialias=True)

    indices = tf.range(tf.size(image_bytes))
    images = tf.map_fn(decode_and_resize, (indices, image_bytes),
                       fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
    return self._features(_checked(images) / 255.0, training=False)

  @tf.function
  def __call__(self, images, training=False):
    return self._features(images, training=training)

  @tf.function(input_signature=[_IMAGES])
  def call_training(self, images):
    """`__call__(images, training=True)`: Keras 3's TFSMLayer passes no `training` argument, it
    calls a separate endpoint while training."""
    return self._features(images, training=True)


def export_saved_model(backbone, out_dir, image_size=224):
  """Writes the SavedModel of `backbone` to `out_dir` (a `<name>/<version>` folder); returns it.

  Args:
    backbone: the keras ResNet returning {'c2', ..., 'c5'} on ImageNet-normalised images.
    out_dir: the version folder, e.g. saved_models/w1/100000; created, must not hold a model.
    image_size: side of the square that `serving_default` resizes every image to.
  """
  if tf.io.gfile.exists(os.path.join(out_dir, 'saved_model.pb')):
    raise FileExistsError(f'{out_dir} already holds a SavedModel; pick another version')
  module = FeatureExtractor(backbone, image_size)
  signatures = {
      'serving_default': module.serving_default.get_concrete_function(),
      'features': module.features.get_concrete_function(),
  }
  for training in (False, True):  # Hub's KerasLayer calls __call__ with either value
    module.__call__.get_concrete_function(_IMAGES, training=training)
  tf.saved_model.save(module, out_dir, signatures=signatures)
  model_name = os.path.basename(os.path.dirname(os.path.normpath(out_dir)))
  write_warmup(os.path.join(out_dir, WARMUP_FILE), model_name, image_size)
  return out_dir


def _gradient_image(size):
  """uint8 [size, size, 3] smooth gradient: warm-up needs valid pixels, not real content."""
  rows, cols = tf.meshgrid(tf.linspace(0.0, 255.0, size), tf.linspace(0.0, 255.0, size),
                           indexing='ij')
  return tf.cast(tf.stack([rows, cols, tf.fill([size, size], 128.0)], axis=-1), tf.uint8)


# The subset of TF Serving's PredictionLog that warm-up reads, with the field numbers of
# tensorflow_serving/apis/{model,predict,prediction_log}.proto: tensorflow-serving-api
# requires the `tensorflow` wheel, which would install over tensorflow-cpu.
_PREDICTION_LOG_PROTO = """
name: "multisiam_tf/tf_serving_prediction_log.proto"
package: "tensorflow.serving"
dependency: "tensorflow/core/framework/tensor.proto"
syntax: "proto3"
message_type {
  name: "ModelSpec"
  field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "signature_name" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
}
message_type {
  name: "PredictRequest"
  field { name: "model_spec" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.serving.ModelSpec" }
  field { name: "inputs" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".tensorflow.serving.PredictRequest.InputsEntry" }
  nested_type {
    name: "InputsEntry"
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
            type_name: ".tensorflow.TensorProto" }
    options { map_entry: true }
  }
}
message_type {
  name: "PredictLog"
  field { name: "request" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.serving.PredictRequest" }
}
message_type {
  name: "PredictionLog"
  field { name: "predict_log" number: 6 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.serving.PredictLog" }
}
"""


def prediction_log_descriptors():
  """FileDescriptorSet (TensorProto's files, then the PredictionLog subset), for decode_proto."""
  files, seen = [], set()

  def add(file_descriptor):  # dependencies first, as a descriptor pool needs them
    if file_descriptor.name in seen:
      return
    seen.add(file_descriptor.name)
    for dependency in file_descriptor.dependencies:
      add(dependency)
    proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(proto)
    files.append(proto)

  add(tensor_pb2.DESCRIPTOR)
  files.append(text_format.Parse(_PREDICTION_LOG_PROTO, descriptor_pb2.FileDescriptorProto()))
  return descriptor_pb2.FileDescriptorSet(file=files)


def _prediction_log_class():
  # A private pool, so that a later import of tensorflow_serving's own protos cannot clash.
  pool = descriptor_pool.DescriptorPool()
  for file_proto in prediction_log_descriptors().file:
    pool.Add(file_proto)
  return message_factory.GetMessageClass(
      pool.FindMessageTypeByName('tensorflow.serving.PredictionLog'))


def write_warmup(path, model_name, image_size):
  """TFRecord of PredictionLogs TF Serving replays at load: both signatures, batch 1 and 2."""
  prediction_log = _prediction_log_class()
  image = _gradient_image(image_size)
  encoded = [tf.io.encode_jpeg(image).numpy(), tf.io.encode_png(image).numpy()]
  requests = [('serving_default', _IMAGE_BYTES.name, tf.constant(encoded[:1])),
              ('serving_default', _IMAGE_BYTES.name, tf.constant(encoded)),
              ('features', _IMAGES.name, tf.cast(image, tf.float32)[None])]
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for signature, input_name, value in requests:
      log = prediction_log()
      request = log.predict_log.request
      request.model_spec.name = model_name
      request.model_spec.signature_name = signature
      # Through bytes: TensorProto classes of two descriptor pools do not mix in CopyFrom.
      request.inputs[input_name].ParseFromString(
          tf.make_tensor_proto(value.numpy()).SerializeToString())
      writer.write(log.SerializeToString())
