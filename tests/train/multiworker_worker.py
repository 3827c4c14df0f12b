"""One worker of the multi-worker test: trains the tiny config under MultiWorkerMirroredStrategy
(cluster from TF_CONFIG) and saves its final weights.

  TF_CONFIG=... python tests/train/multiworker_worker.py IMAGES WORKDIR OUT.npz
"""

import os
import sys

import numpy as np
import tensorflow as tf

from multisiam_tf import config as config_lib
from multisiam_tf.train import distribute
from multisiam_tf.train import loop

TINY_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tiny_config.py')


def main(images, workdir, out):
  # Graph optimisation costs more than these 3 tiny steps gain from it; the maths is the same.
  tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
  strategy = distribute.make_strategy('multi_worker')  # before any other TF op
  config = config_lib.load(TINY_CONFIG).get_config()
  config.data.path = images
  config.train.steps = 3
  config.train.batch_size = 4  # 2 per replica: batch norm needs two images
  config.train.image_every = 100
  model = loop.train(config, workdir, strategy)
  # BN moving statistics are each worker's own (local batch statistics without sync_bn).
  np.savez(out, **{f'{i}:{v.path}': v.numpy() for i, v in enumerate(model.weights)
                   if 'moving_' not in v.path})


if __name__ == '__main__':
  main(*sys.argv[1:])
