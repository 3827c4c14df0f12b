r"""Runs a tf.data service dispatcher or worker until killed, to move input work off trainers.

  python scripts/data_service.py --role dispatcher --port 5050
  python scripts/data_service.py --role worker --port 5051 --dispatcher_address HOST:5050
  python scripts/pretrain.py ... --config.data.service_address=grpc://HOST:5050
"""

from absl import flags
from absl import logging
import tensorflow as tf

from multisiam_tf import cli

_ROLE = flags.DEFINE_enum('role', None, ['dispatcher', 'worker'], 'Which server to run.')
_PORT = flags.DEFINE_integer('port', 5050, 'Port to serve on.')
_DISPATCHER = flags.DEFINE_string('dispatcher_address', 'localhost:5050',
                                  'Worker only: the dispatcher as host:port.')
_WORKER_HOST = flags.DEFINE_string('worker_host', 'localhost',
                                   'Worker only: the host name the dispatcher hands to trainers.')
flags.mark_flag_as_required('role')


def main(argv):
  del argv
  service = tf.data.experimental.service
  if _ROLE.value == 'dispatcher':
    server = service.DispatchServer(service.DispatcherConfig(port=_PORT.value))
  else:
    server = service.WorkerServer(service.WorkerConfig(
        dispatcher_address=_DISPATCHER.value.removeprefix('grpc://'),
        worker_address=f'{_WORKER_HOST.value}:{_PORT.value}', port=_PORT.value))
  logging.info('tf.data service %s serving on port %d', _ROLE.value, _PORT.value)
  server.join()


if __name__ == '__main__':
  cli.run(main)
