"""Progress bars: keras.utils.Progbar, with colour codes only on a terminal."""

import sys

import keras


def bar(target, unit_name='step', stateful_metrics=None):
  """A Progbar to `target` that ends with the total time.

  Keras' verbose=1 bar writes ANSI colour codes and backspaces even into a file or pipe; there
  the plain verbose=2 form prints a single line at the end instead.
  """
  return keras.utils.Progbar(target, verbose=1 if sys.stdout.isatty() else 2,
                             unit_name=unit_name, stateful_metrics=stateful_metrics)
