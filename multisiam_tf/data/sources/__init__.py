"""Where training images come from: the inputs named by `data.path`, read as (key, bytes, problem).

`list_inputs` (or `from_config`) turns `data.path` and `data.format` into Inputs: sorted files
and how to read them. `read` turns a dataset of those files into a dataset of
`(key, encoded image, problem)`, where `key` names the file (and record, and camera) for error
messages and `problem` is what the reader found wrong ('' when nothing); `problem` adds the
cheap header checks of `image_problem`. `num_examples` counts a source once per workdir.

Formats (`data.format`): folder (JPEG/PNG files), tfrecord (tf.train.Example with
`image/encoded`), waymo_v1 (segment TFRecords of Frame protos), waymo_v2 (parquet camera_image
files), soda10m, bdd100k, cityscapes, imagenet (their published folder layouts), tfds (a prepared
TFDS dataset). A new format is a reader from file names to those triples, added to READERS, or a
layout in layouts.LAYOUTS when its images are plain files.
"""

from multisiam_tf.data.sources.checks import image_problem
from multisiam_tf.data.sources.checks import problem
from multisiam_tf.data.sources.counting import count_examples
from multisiam_tf.data.sources.counting import count_inputs
from multisiam_tf.data.sources.counting import num_examples
from multisiam_tf.data.sources.examples import read_tfrecords
from multisiam_tf.data.sources.examples import TFRECORD_IMAGE_KEY
from multisiam_tf.data.sources.examples import TRUNCATED
from multisiam_tf.data.sources.files import IMAGE_EXTENSIONS
from multisiam_tf.data.sources.listing import FORMATS
from multisiam_tf.data.sources.listing import from_config
from multisiam_tf.data.sources.listing import Inputs
from multisiam_tf.data.sources.listing import list_inputs
from multisiam_tf.data.sources.waymo_v1 import CAMERAS
from multisiam_tf.data.sources.waymo_v1 import read_frames
from multisiam_tf.data.sources.waymo_v2 import read_parquet
import tensorflow as tf


def read_image_files(files):
  """A dataset of image file names -> (file name, file bytes, '')."""
  return files.map(lambda f: (f, tf.io.read_file(f), tf.constant('')),
                   num_parallel_calls=tf.data.AUTOTUNE)


READERS = {  # Inputs.format: reader(file names, inputs)
    'folder': lambda files, inputs: read_image_files(files),
    'tfrecord': lambda files, inputs: read_tfrecords(files, inputs.image_key, inputs.files),
    'waymo_v1': lambda files, inputs: read_frames(files, inputs.cameras),
    'waymo_v2': lambda files, inputs: read_parquet(files, inputs.cameras),
}


def read(files, inputs):
  """A dataset of input file names -> (key, encoded image, problem), read as `inputs` says."""
  return READERS[inputs.format](files, inputs)
