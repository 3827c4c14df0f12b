r"""The demo: MultiSiam on the built-in synthetic street scenes, on a CPU, in minutes.

  python scripts/make_demo_data.py --out runs/demo/data --num 256 --size 160 240
  python scripts/pretrain.py --config configs/demo.py --workdir runs/demo/multisiam

The full model (configs/paper.py:table1/multisiam) at the `demo` scale: a ResNet-18 at half width
on 96 px views (output stride 16: a 6x6 map), batch 16, 10 epochs of the 256 scenes
(10 * 256 / 16 = 160 steps, the first epoch of them warmup), with the small-scale recipe.
`make demo` runs it beside BYOL and a random init (scripts/study.py --scale demo).
"""

import os

from multisiam_tf import config as config_lib

paper = config_lib.load(os.path.join(os.path.dirname(__file__), 'paper.py'))


def get_config(arg=''):
  del arg
  return paper.get_config('table1/multisiam,demo')
