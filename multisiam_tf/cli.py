"""What the absl scripts in scripts/ share: app.run whose --help is a success, and a config
flag read as the config or a one-line error."""

import sys

from absl import app

from multisiam_tf import config as config_lib

_HELP_FLAGS = ('-?', '-h', '-help', '--help', '--helpshort', '--helpfull', '--helpxml')


def run(main, **kwargs):
  """absl.app.run(main, **kwargs), except that asking for help exits 0: absl exits 1 after
  printing it, which shells and CI read as a failure."""
  try:
    app.run(main, **kwargs)
  except SystemExit as e:
    if e.code == 1 and any(arg in _HELP_FLAGS for arg in sys.argv[1:]):
      raise SystemExit(0) from None
    raise


def config_or_exit(flag):
  """The config of a config_lib.define_config_flag flag; a bad one exits with its error alone."""
  try:
    return config_lib.from_flag(flag)
  except config_lib.ConfigError as e:
    sys.exit(f'error: {e}')
