"""Waymo Open Dataset v1 segments: TFRecords of `Frame` protos, one camera image per example.

The waymo-open-dataset package pins TF 2.11-2.13, so the few fields read here are described by
a minimal descriptor built in code (field numbers of the dataset's `dataset.proto`), which
`tf.io.decode_proto` uses in the graph and protobuf's message factory in Python. Everything else
in a Frame (lidar, labels, calibrations) is skipped unparsed.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message
from google.protobuf import message_factory
import tensorflow as tf

CAMERAS = ('FRONT', 'FRONT_LEFT', 'FRONT_RIGHT', 'SIDE_LEFT', 'SIDE_RIGHT')  # CameraName 1..5
PACKAGE = 'waymo.open_dataset'
NOT_A_FRAME = 'not a Waymo v1 Frame: the record does not parse as one'
NO_IMAGES = 'not a Waymo v1 Frame: the record has no camera images (Frame.images, field 4)'
NO_JPEG = 'the camera image has no JPEG bytes (CameraImage.image, field 2)'

_F = descriptor_pb2.FieldDescriptorProto
_MESSAGES = {  # message: [(field, number, type, repeated, message type)]
    'Context': [('name', 1, _F.TYPE_STRING, False, None)],
    'CameraSegmentationLabel': [('panoptic_label_divisor', 1, _F.TYPE_INT32, False, None),
                                ('panoptic_label', 2, _F.TYPE_BYTES, False, None)],
    'CameraImage': [('name', 1, _F.TYPE_INT32, False, None),  # an enum on the wire: a varint
                    ('image', 2, _F.TYPE_BYTES, False, None),
                    ('camera_segmentation_label', 10, _F.TYPE_MESSAGE, False,
                     'CameraSegmentationLabel')],
    'Frame': [('context', 1, _F.TYPE_MESSAGE, False, 'Context'),
              ('images', 4, _F.TYPE_MESSAGE, True, 'CameraImage')],
}


def descriptor_set():
  """The FileDescriptorSet of the minimal Frame, CameraImage, CameraSegmentationLabel, Context."""
  files = descriptor_pb2.FileDescriptorSet()
  proto = files.file.add(name='waymo_minimal_frame.proto', package=PACKAGE, syntax='proto2')
  for name, fields in _MESSAGES.items():
    message_type = proto.message_type.add(name=name)
    for field, number, kind, repeated, type_name in fields:
      entry = message_type.field.add(
          name=field, number=number, type=kind,
          label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
      if type_name:
        entry.type_name = f'.{PACKAGE}.{type_name}'
  return files


_DESCRIPTOR_SOURCE = b'bytes://' + descriptor_set().SerializeToString()
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(descriptor_set().file[0])


def message_class(name):
  """The Python class of one of the minimal messages (e.g. 'Frame'), to parse or build them."""
  return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f'{PACKAGE}.{name}'))


def camera_ids(cameras):
  """Sorted CameraName ids of `cameras` (names as in CAMERAS, or ids 1-5)."""
  ids = set()
  for camera in cameras:
    if isinstance(camera, str) and camera.upper() in CAMERAS:
      ids.add(CAMERAS.index(camera.upper()) + 1)
    elif isinstance(camera, int) and not isinstance(camera, bool) and 1 <= camera <= 5:
      ids.add(camera)
    else:
      raise ValueError(f'data.cameras: {camera!r} is no Waymo camera; use names of {CAMERAS} '
                       'or their ids 1-5')
  if not ids:
    raise ValueError(f'data.cameras is empty; name at least one of {CAMERAS}')
  return tuple(sorted(ids))


def _decode(message_type, serialized, fields, types):
  """tf.io.decode_proto of the minimal messages: (sizes, values), values [N, max count]."""
  return tf.io.decode_proto(serialized, f'{PACKAGE}.{message_type}', fields, types,
                            descriptor_source=_DESCRIPTOR_SOURCE)


def _first(values, default):
  """[N] value of each row of decode_proto's [N, max count] output of an optional field (max
  count 0 or 1); `default` where none. A reshape, not a slice: strings are not copied."""
  return tf.cond(tf.shape(values)[1] > 0, lambda: tf.reshape(values, [-1]),
                 lambda: tf.fill(tf.shape(values)[:1], default))


def _frame_images(record):
  """The CameraImage messages of one serialized Frame, as a [num images] string vector."""
  sizes, (images,) = _decode('Frame', record[None], ['images'], [tf.string])
  # [1, max(count, 1)]: a reshape, which copies no string, unless the Frame has no images
  return tf.cond(tf.equal(sizes[0, 0], tf.shape(images)[1]), lambda: tf.reshape(images, [-1]),
                 lambda: images[0, :sizes[0, 0]])


def _parse(key, record):
  """(key, camera names [N], JPEG bytes [N], '') of one serialized Frame; fails on no protobuf."""
  images = _frame_images(record)

  def cameras():
    _, (names, jpegs) = _decode('CameraImage', images, ['name', 'image'], [tf.int32, tf.string])
    return _first(names, 0), _first(jpegs, '')
  none = (tf.zeros([0], tf.int32), tf.zeros([0], tf.string))  # decode_proto refuses no input
  names, jpegs = tf.cond(tf.size(images) > 0, cameras, lambda: none)
  return key, names, jpegs, tf.constant('')


def _camera_elements(key, names, jpegs, problem, wanted):
  """(keys, encoded, problems) of the wanted cameras, or one element reporting a bad record."""
  def bad():
    why = tf.where(tf.equal(problem, ''), NO_IMAGES, problem)
    return key[None], tf.constant([''], tf.string), why[None]

  def good():
    keep = tf.reduce_any(tf.equal(names[:, None], wanted[None, :]), axis=1)
    table = tf.constant(('UNKNOWN',) + CAMERAS)
    camera = tf.gather(table, tf.where((names >= 1) & (names <= len(CAMERAS)), names, 0))
    keys = tf.strings.join([key, camera], ':')
    problems = tf.where(tf.equal(jpegs, ''), NO_JPEG, '')
    elements = (keys, jpegs, problems)
    return tf.cond(tf.reduce_all(keep), lambda: elements,  # all cameras: nothing to copy
                   lambda: tuple(tf.boolean_mask(x, keep) for x in elements))
  return tf.cond(tf.equal(problem, '') & (tf.size(names) > 0), good, bad)


def read_frames(files, cameras=CAMERAS):
  """A dataset of segment file names -> ('file:record:CAMERA', JPEG bytes, problem).

  A record that does not parse as a Frame, or holds no camera image, gives one element with
  empty bytes and the reason, keyed 'file:record', for the pipeline to report or skip.
  """
  wanted = tf.constant(camera_ids(cameras), tf.int32)

  def keyed_records(f):
    return tf.data.TFRecordDataset(f).enumerate().map(
        lambda i, record: (tf.strings.join([f, tf.strings.as_string(i)], ':'), record))

  def frame(key, record):
    unparsed = (key, tf.zeros([0], tf.int32), tf.zeros([0], tf.string), NOT_A_FRAME)
    # decode_proto fails on bytes that are no protobuf: caught per record, reported by key
    parsed = tf.data.Dataset.from_tensors((key, record)).map(_parse).ignore_errors()
    return parsed.concatenate(tf.data.Dataset.from_tensors(unparsed)).take(1)
  records = files.interleave(keyed_records, num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True)
  frames = records.flat_map(frame)
  return frames.map(lambda *parsed: _camera_elements(*parsed, wanted),
                    num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def is_frame(record):
  """Whether serialized `record` parses as a Frame holding at least one camera image."""
  try:
    return len(message_class('Frame').FromString(record).images) > 0
  except message.DecodeError:
    return False

