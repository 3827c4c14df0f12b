"""Real files for the source tests: encoded images, tf.train.Examples, Waymo Frames, readers."""

import io
import os

import numpy as np
from PIL import Image
import tensorflow as tf

from multisiam_tf.data import sources
from multisiam_tf.data.sources import waymo_v1


def encode(array, fmt='JPEG', **kwargs):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def write(path, data):
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  return str(path)


def rgb(height=24, width=32, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def example(**features):
  feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
             for k, v in features.items()}
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def frame(images, context='segment_0', labels=None):
  """A serialized Waymo v1 Frame; images: {camera id: JPEG bytes}, labels: {camera id: (divisor,
  uint16 PNG bytes)}."""
  message = waymo_v1.message_class('Frame')()
  message.context.name = context
  for camera, jpeg in images.items():
    image = message.images.add(name=camera, image=jpeg)
    if labels and camera in labels:
      divisor, png = labels[camera]
      image.camera_segmentation_label.panoptic_label_divisor = divisor
      image.camera_segmentation_label.panoptic_label = png
  return message.SerializeToString()


def write_records(path, records):
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(record)
  return str(path)


def read_all(inputs):
  """[(key, encoded, problem)] of every input, keys and problems as str."""
  ds = sources.read(tf.data.Dataset.from_tensor_slices(list(inputs.files)), inputs)
  return [(k.decode(), v, p.decode()) for k, v, p in ds.as_numpy_iterator()]


def problems(encoded_list, min_image_size=8):
  ds = tf.data.Dataset.from_tensor_slices(encoded_list)
  ds = ds.map(lambda e: sources.image_problem(e, min_image_size))
  return [p.decode() for p in ds.as_numpy_iterator()]
