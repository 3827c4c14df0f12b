r"""Throughput benchmarks; `--what` picks train_step, input or all; tables, and JSON with --json.

  python scripts/benchmark.py --what all --json runs/benchmark.json     # or: make benchmark
  python scripts/benchmark.py --what train_step --quick                 # a smoke run

The JSON: {"machine": {...}, "train_step": {NAME: {"img_per_s", "peak_rss_gb", "precision",
...}}, "input": {NAME: {"pairs_per_s_per_core", ...}}, "ratios": {...}}; a ratio that could not
be measured is null, with the reason under NAME_reason.

train_step: images/s, peak RSS and FLOP/s of multisiam (the project's training update), byol,
  bare (the backbones' share of a step) and torch_bare (the bare step in PyTorch), each in
  float32 and bfloat16, every one in its own worker process per round (multisiam_tf/bench/).

input: view pairs per second per CPU core on generated 1920x1280 quality-90 JPEGs (or --jpegs), for
  tf_data            this pipeline (pipeline.make_dataset: decode-and-crop of the pair's union,
                     DCT-scaled to the coarsest 1/r that keeps both views >= image_size)
  tf_data_full       the same with data.decode_and_crop=False (full decode, then crop)
  pil_loader         a single-process PIL + numpy loader as PyTorch SSL code writes it: full
                     decode (torchvision's pil_loader: Image.open(f).convert('RGB')),
                     IoU-constrained crops, resize, flip, colour jitter, grayscale,
                     ImageFilter.GaussianBlur, solarize, normalise.
  pil_loader_lean    the same without convert('RGB') on images already RGB (a copy that costs
                     Pillow more than the decode on these frames).
  tf_data_FORMAT     with --format and --path: this pipeline on that source (e.g. --format
                     waymo_v1 --path SEGMENT), beside the others on --jpegs (the same camera
                     images extracted to files); "vs tf_data" is its per-core ratio to tf_data.
  Per core = pairs / CPU seconds the process used (user + sys, all threads), so a loaded or
  shared machine does not flatter or penalise the multi-threaded loaders; pairs per wall second
  and the cores tf.data may use (os.sched_getaffinity) are reported beside it. Each of --rounds
  rounds times every loader in turn (a tf.data pipeline is built, warmed up, timed and torn
  down within its turn, so none works in the background of another's timing), after
  --warmup_rounds untimed ones (the first round in a process runs cold: allocator growth, page
  faults). "vs PIL/core" is the median over rounds of each round's ratio to pil_loader, pairs
  measured side by side; the other columns are medians over rounds; the JSON has every round.
"""

import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import resource
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageEnhance
from PIL import ImageFilter
from PIL import ImageOps
import tensorflow as tf

from multisiam_tf import cli
from multisiam_tf import config as config_lib
from multisiam_tf.bench import tf_steps
from multisiam_tf.bench import train_step
from multisiam_tf.data import augment
from multisiam_tf.data import pipeline
from multisiam_tf.data import synthetic
from multisiam_tf.train import distribute

_JSON = flags.DEFINE_string('json', None, 'JSON file for the results (optional).')
flags.DEFINE_alias('out', 'json')
_QUICK = flags.DEFINE_bool('quick', False, 'train_step: a smoke run, ResNet-18 at 112 px, 3 steps '
                           'in one round (flags given explicitly still win).')
_DEPTH = flags.DEFINE_enum('depth', '50', ['18', '34', '50', '101'], 'train_step: ResNet depth.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 224, 'train_step: view size.', lower_bound=32)
_TRAIN_BATCH = flags.DEFINE_integer('train_batch', 16, 'train_step: batch of each view.',
                                    lower_bound=1)
_STEPS = flags.DEFINE_integer('steps', 3, 'train_step: timed steps per worker and round.',
                              lower_bound=1)
_STEP_ROUNDS = flags.DEFINE_integer('step_rounds', 2, 'train_step: rounds, each starting a fresh '
                                    'worker per contender and precision.', lower_bound=1)
_WARMUP_STEPS = flags.DEFINE_integer(
    'warmup_steps', 2, "train_step: untimed steps per worker (the first traces; torch's bfloat16 "
    'autocast runs slow for two).', lower_bound=1)
_PRECISIONS = flags.DEFINE_list('precisions', list(train_step.PRECISIONS), 'train_step: '
                                'precisions to time.')
_CONTENDERS = flags.DEFINE_list('contenders', list(train_step.CONTENDERS), 'train_step: '
                                'contenders to time.')
_MATMUL = flags.DEFINE_integer('matmul_size', 2048, 'train_step: n of the n x n matmul that '
                               "measures the machine's matmul rate.", lower_bound=16)
_PROFILE = flags.DEFINE_string('profile_dir', None, 'train_step: write a tf.profiler trace of the '
                                'TensorFlow contenders\' timed steps here (TensorBoard).')
_TIMEOUT = flags.DEFINE_integer('worker_timeout', 1800, 'train_step: seconds a worker may take.')
_IMAGES = flags.DEFINE_integer('images', 32, 'input: number of generated JPEGs.', lower_bound=1)
_JPEGS = flags.DEFINE_string('jpegs', None, 'input: a glob of JPEG files to time instead of '
                             'generated scenes (camera frames of a real dataset).')
_FORMAT = flags.DEFINE_string('format', None, 'input: also time the pipeline on --path read as '
                               'this data.format.')
_PATH = flags.DEFINE_string('path', None, 'input: the data.path of --format.')
_HEIGHT = flags.DEFINE_integer('height', 1280, 'input: JPEG height.')
_WIDTH = flags.DEFINE_integer('width', 1920, 'input: JPEG width.')
_PAIRS = flags.DEFINE_integer('pairs', 256, 'input: view pairs timed per loader.', lower_bound=1)
_BATCH = flags.DEFINE_integer('batch', 32, 'input: tf.data batch size.', lower_bound=1)
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'input: rounds, each timing every loader once; the '
                               'table gives medians over rounds.', lower_bound=1)
_WARMUP_ROUNDS = flags.DEFINE_integer('warmup_rounds', 1, 'input: untimed rounds first.',
                                      lower_bound=0)


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _timed(name, run, pairs, cores):
  """Runs `run(pairs)` (after its own warm-up) and returns its figures."""
  wall, cpu = time.perf_counter(), _cpu_seconds()
  run(pairs)
  wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
  result = {'pairs': pairs, 'wall_s': wall, 'cpu_s': cpu, 'cores_available': cores,
            'pairs_per_s': pairs / wall, 'pairs_per_cpu_s': pairs / cpu}
  logging.info('%s: %s', name, result)
  return result


def _write_jpegs(folder, num, height, width):
  for i in range(num):
    scene = synthetic.make_scene(i, height, width)
    Image.fromarray(scene.image).save(os.path.join(folder, f'{i:03d}.jpg'), quality=90)


def _jpeg_files(folder):
  """(data path, sorted files, description) of the timed JPEGs: --jpegs's matches, or scenes
  generated into `folder`."""
  if _JPEGS.value:
    files = sorted(tf.io.gfile.glob(_JPEGS.value))
    if not files:
      raise app.UsageError(f'--jpegs {_JPEGS.value!r} matches no file')
    return _JPEGS.value, files, f'{len(files)} JPEGs matching {_JPEGS.value}'
  _write_jpegs(folder, _IMAGES.value, _HEIGHT.value, _WIDTH.value)
  files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
  return folder, files, f'{_IMAGES.value} JPEGs of {_WIDTH.value}x{_HEIGHT.value}, quality 90'


def _tf_loader(data, path, batch):
  """A run(pairs) function that draws pairs from pipeline.make_dataset, warmed up."""
  config = config_lib.defaults()
  config.data = data
  config.data.path = path
  iterator = iter(pipeline.make_dataset(config, seed=0, batch_size=batch))
  for _ in range(2):  # tracing and start-up stay out of the timing; then the buffers run empty
    next(iterator)

  def run(pairs):
    for _ in range(math.ceil(pairs / batch)):
      next(iterator)['view1'].numpy()
  return run


class _PilLoader:
  """Views as torchvision-based BYOL code makes them, one image at a time, in this process."""

  def __init__(self, data, files, always_convert=True, seed=0):
    self.data, self.files, self.rng = data, files, random.Random(seed)
    self.always_convert = always_convert
    self.mean, self.std = np.array(augment.MEAN, np.float32), np.array(augment.STD, np.float32)

  def crop_box(self, width, height):
    """torchvision RandomResizedCrop.get_params: (left, top, right, bottom)."""
    area = width * height
    log_ratio = [math.log(r) for r in self.data.aspect_ratio_range]
    for _ in range(10):
      target = area * self.rng.uniform(*self.data.area_range)
      ratio = math.exp(self.rng.uniform(*log_ratio))
      w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
      if 0 < w <= width and 0 < h <= height:
        left, top = self.rng.randint(0, width - w), self.rng.randint(0, height - h)
        return left, top, left + w, top + h
    w, h = width, height  # centre crop fallback, as torchvision (ratio clamping omitted)
    return 0, 0, w, h

  def pair_boxes(self, width, height):
    def iou(a, b):
      inter = (max(0, min(a[2], b[2]) - max(a[0], b[0]))
               * max(0, min(a[3], b[3]) - max(a[1], b[1])))
      union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
      return inter / union
    for _ in range(self.data.max_pair_tries):
      a, b = self.crop_box(width, height), self.crop_box(width, height)
      if iou(a, b) >= self.data.iou_threshold:
        return a, b
    return a, a

  def augment(self, img, view):
    """BYOL's ops on a PIL image as torchvision's transforms apply them."""
    r = self.rng
    if r.random() < 0.5:
      img = ImageOps.mirror(img)
    if r.random() < 0.8:
      ops = [lambda x: ImageEnhance.Brightness(x).enhance(r.uniform(0.6, 1.4)),
             lambda x: ImageEnhance.Contrast(x).enhance(r.uniform(0.6, 1.4)),
             lambda x: ImageEnhance.Color(x).enhance(r.uniform(0.8, 1.2)),
             lambda x: self.adjust_hue(x, r.uniform(-0.1, 0.1))]
      r.shuffle(ops)
      for op in ops:
        img = op(img)
    if r.random() < 0.2:
      img = img.convert('L').convert('RGB')
    if r.random() < (1.0 if view == 1 else 0.1):
      img = img.filter(ImageFilter.GaussianBlur(radius=r.uniform(0.1, 2.0)))
    if r.random() < (0.0 if view == 1 else 0.2):
      img = ImageOps.solarize(img, 128)
    return (np.asarray(img, np.float32) / 255.0 - self.mean) / self.std

  @staticmethod
  def adjust_hue(img, factor):
    """torchvision's F.adjust_hue for PIL images: shift H in HSV, uint8 wrap-around."""
    h, s, v = img.convert('HSV').split()
    shift = round(factor * 255) % 256
    h = Image.fromarray(((np.asarray(h, np.uint16) + shift) % 256).astype(np.uint8))
    return Image.merge('HSV', (h, s, v)).convert('RGB')

  def __call__(self, pairs):
    size = (self.data.image_size, self.data.image_size)
    for i in range(pairs):
      img = Image.open(self.files[i % len(self.files)])
      if self.always_convert or img.mode != 'RGB':
        img = img.convert('RGB')
      for view, box in enumerate(self.pair_boxes(*img.size), 1):
        self.augment(img.crop(box).resize(size, Image.BILINEAR), view)


def _median_figures(rounds):
  """One loader's figures over rounds: the median of each, and every round's pairs/CPU-s."""
  median = {key: float(np.median([r[key] for r in rounds]))
            for key in ('wall_s', 'cpu_s', 'pairs_per_s', 'pairs_per_cpu_s')}
  return dict(rounds[0], **median, rounds=len(rounds),
              pairs_per_cpu_s_by_round=[r['pairs_per_cpu_s'] for r in rounds])


def benchmark_input():
  """View pairs per CPU second of the four loaders on the same generated JPEGs."""
  data = config_lib.defaults().data
  cores = len(os.sched_getaffinity(0))
  with tempfile.TemporaryDirectory() as folder:
    path, files, images = _jpeg_files(folder)
    pil, lean = _PilLoader(data, files), _PilLoader(data, files, always_convert=False)
    pil(2)  # warm the file cache and PIL's codecs
    full = config_lib.defaults().data
    full.decode_and_crop = False
    loaders = {  # name: (make the run(pairs) function, warmed up; cores it may use)
        'tf_data': (lambda: _tf_loader(data, path, _BATCH.value), cores),
        'tf_data_full': (lambda: _tf_loader(full, path, _BATCH.value), cores),
        'pil_loader': (lambda: pil, 1),
        'pil_loader_lean': (lambda: lean, 1),
    }
    if _FORMAT.value:
      source = config_lib.defaults().data
      source.format = _FORMAT.value
      loaders[f'tf_data_{_FORMAT.value}'] = (lambda: _tf_loader(source, _PATH.value, _BATCH.value),
                                             cores)
    rounds = {name: [] for name in loaders}
    for round_index in range(_WARMUP_ROUNDS.value + _ROUNDS.value):
      for name, (make, loader_cores) in loaders.items():
        run = make()
        figures = _timed(name, run, _PAIRS.value, loader_cores)
        if round_index >= _WARMUP_ROUNDS.value:
          rounds[name].append(figures)
        del run
        gc.collect()  # the tf.data iterator and its threads go before the next loader's turn
  results = {name: _median_figures(figures) for name, figures in rounds.items()}
  for name, result in results.items():
    result['per_core_vs_pil_by_round'] = [
        r['pairs_per_cpu_s'] / p['pairs_per_cpu_s']
        for r, p in zip(rounds[name], rounds['pil_loader'])]
    result['per_core_vs_pil'] = float(np.median(result['per_core_vs_pil_by_round']))
  if _FORMAT.value:
    result = results[f'tf_data_{_FORMAT.value}']
    result['per_core_vs_tf_data_by_round'] = [
        r['pairs_per_cpu_s'] / t['pairs_per_cpu_s']
        for r, t in zip(rounds[f'tf_data_{_FORMAT.value}'], rounds['tf_data'])]
    result['per_core_vs_tf_data'] = float(np.median(result['per_core_vs_tf_data_by_round']))
    print(f'tf_data_{_FORMAT.value} vs tf_data per core: {result["per_core_vs_tf_data"]:.2f}x '
          '(rounds: ' + ' '.join(f'{x:.2f}' for x in result['per_core_vs_tf_data_by_round'])
          + ')')
  return {'images': images,
          'view_size': data.image_size, 'iou_threshold': data.iou_threshold,
          'rounds': _ROUNDS.value, 'warmup_rounds': _WARMUP_ROUNDS.value, 'results': results}


def _train_step_settings():
  """Worker settings from the flags; --quick changes the defaults of those not given."""
  quick = {'depth': 18, 'image_size': 112, 'steps': 3, 'step_rounds': 1, 'matmul_size': 1024}
  def value(flag):
    given = flags.FLAGS[flag.name].present or not _QUICK.value or flag.name not in quick
    return flag.value if given else quick[flag.name]
  return {'depth': int(value(_DEPTH)), 'image_size': value(_IMAGE_SIZE),
          'batch': _TRAIN_BATCH.value, 'steps': value(_STEPS), 'warmup': _WARMUP_STEPS.value,
          'matmul': value(_MATMUL), 'profile': _PROFILE.value}, value(_STEP_ROUNDS)


def benchmark_train_step():
  """Images/s, peak RSS and FLOP/s of each contender in each precision, alternated in rounds."""
  settings, rounds = _train_step_settings()
  for name, values, known in (('contenders', _CONTENDERS.value, train_step.CONTENDERS),
                              ('precisions', _PRECISIONS.value, train_step.PRECISIONS)):
    if not values or set(values) - set(known):
      raise app.UsageError(f'--{name} takes some of {", ".join(known)}; got {values}')
  results = train_step.run_rounds(_CONTENDERS.value, _PRECISIONS.value, settings, rounds,
                                  _TIMEOUT.value, log=logging.info)
  table, errors = train_step.summarise(results, settings)
  rates = train_step.matmul_rates(results, _PRECISIONS.value)
  for entry in table.values():
    entry.update(settings, rounds=rounds)
  for (contender, precision), why in errors.items():
    logging.error('%s in %s did not run: %s', contender, precision, why)
  return {'train_step': table,
          'ratios': train_step.ratios(table, errors, rates, _PRECISIONS.value),
          'matmul_gflop_per_s': rates}


_WHAT = flags.DEFINE_enum('what', None, ['train_step', 'input', 'all'], 'Which benchmark to run.',
                          required=True)


def _input_section(report):
  """{NAME: figures} of the input benchmark, per core first; the ratio of the issue's shape."""
  settings = {k: v for k, v in report.items() if k != 'results'}
  section = {name: {'pairs_per_s_per_core': r['pairs_per_cpu_s'], **r, **settings}
             for name, r in report['results'].items()}
  return section, {'input_vs_pil': report['results']['tf_data']['per_core_vs_pil']}


def _machine(matmul):
  """The host: CPU, its bfloat16 support, cores, versions, where TensorFlow computes."""
  cpu = distribute.cpu_flags()
  torch_spec = importlib.util.find_spec('torch')
  return {
      'cpu': _cpu_model(), 'avx512_bf16': 'avx512_bf16' in cpu, 'amx_bf16': 'amx_bf16' in cpu,
      'bfloat16_matmul': ('native (AMX)' if 'amx_bf16' in cpu else 'native dot products '
                          '(AVX512-BF16)' if 'avx512_bf16' in cpu else 'emulated'),
      'cores': len(os.sched_getaffinity(0)), 'device': tf_steps.device_name(),
      'auto_precision': distribute.auto_precision(tf.distribute.get_strategy()),
      'matmul_gflop_per_s': matmul, 'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'torch': importlib.metadata.version('torch') if torch_spec else None,
      'load_average': os.getloadavg(), 'command': ' '.join(sys.argv)}


def _run(what):
  """The report in the issue's shape: machine, train_step, input, ratios."""
  report = {'train_step': {}, 'input': {}, 'ratios': {}}
  matmul = {}
  if what in ('train_step', 'all'):
    step = benchmark_train_step()
    report['train_step'], matmul = step['train_step'], step['matmul_gflop_per_s']
    report['ratios'].update(step['ratios'])
  else:
    names = train_step.RATIOS
    report['ratios'].update({name: None for name in names},
                            **{f'{name}_reason': 'train_step not run' for name in names})
  if what in ('input', 'all'):
    report['input'], ratio = _input_section(benchmark_input())
    report['ratios'].update(ratio)
  else:
    report['ratios'].update(input_vs_pil=None, input_vs_pil_reason='input not run')
  return {'machine': _machine(matmul), **report}


def _table(results):
  lines = [f'{"loader":<16}{"pairs/s":>10}{"pairs/CPU-s":>13}{"cores":>7}{"vs PIL/core":>13}'
           f'  {"vs PIL/core by round":<}']
  for name, r in results.items():
    by_round = ' '.join(f'{x:.2f}' for x in r.get('per_core_vs_pil_by_round', []))
    lines.append(f'{name:<16}{r["pairs_per_s"]:>10.1f}{r["pairs_per_cpu_s"]:>13.1f}'
                 f'{r["cores_available"]:>7}{r["per_core_vs_pil"]:>12.2f}x  {by_round}')
  return '\n'.join(lines)


def _step_table(table):
  lines = [f'{"contender":<20}{"img/s":>8}{"img/CPU-s":>11}{"step s":>8}{"GFLOP/s":>9}'
           f'{"peak RSS GB":>13}  img/s by round']
  for name, r in table.items():
    gflop = f'{r["gflop_per_s"]:>9.1f}' if 'gflop_per_s' in r else f'{"-":>9}'
    by_round = ' '.join(f'{x:.2f}' for x in r['img_per_s_by_round'])
    lines.append(f'{name:<20}{r["img_per_s"]:>8.2f}{r["img_per_cpu_s"]:>11.2f}'
                 f'{r["median_step_s"]:>8.2f}{gflop}{r["peak_rss_gb"]:>13.2f}  {by_round}')
  return '\n'.join(lines)


def _cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if bool(_FORMAT.value) != bool(_PATH.value):
    raise app.UsageError('--format and --path go together')
  report = _run(_WHAT.value)
  if report['input']:
    print(_table(report['input']))
  if report['train_step']:
    print(_step_table(report['train_step']))
  print(json.dumps({'machine': report['machine'], 'ratios': report['ratios']}, indent=1))
  if _JSON.value:
    tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(_JSON.value)))
    with open(_JSON.value, 'w') as f:
      json.dump(report, f, indent=2)


if __name__ == '__main__':
  cli.run(main)
