r"""Runs rows of the paper's tables x seeds: pretraining, evaluation by fine-tuning and by the
linear probe (the probe also at intermediate checkpoints), a random init per seed; writes
study.json, study.md and study.png in --out.

  python scripts/study.py --rows table4 --seeds 0,1,2 --scale camvid --out runs/study \
      --eval_train ../shared/data/camvid_train --eval_val ../shared/data/camvid_val \
      --num_classes 11 --ignore_index 11 --eval_size 180 240 --eval_every 250
  python scripts/study.py --rows table4,table9/roi --seeds 0,1,2 --scale paper --out /nfs/study \
      --config.data.path='/data/waymo/training/*.tfrecord' --print_commands

--rows takes tables and TABLE/ROW names of configs/paper.py, comma-separated. Each run is a
workdir --out/TABLE/ROW/seedK pretrained by scripts/pretrain.py in a subprocess (its output in
pretrain.log there); rows of equal configs share one run. Run again with the same flags, the
study skips finished runs, resumes a killed one from its newest checkpoint and evaluates only
what is not stored yet. --print_commands prints one pretraining command per run and exits, to
spread the runs over machines; a later study on the same --out then only evaluates them.
--config.FIELD=VALUE overrides every row's config (and is passed to each pretraining).
"""

import os
import shlex
import sys

from absl import app
from absl import logging
from absl.flags import argparse_flags

from multisiam_tf import config as config_lib
from multisiam_tf.study import evaluate
from multisiam_tf.study import figure
from multisiam_tf.study import report
from multisiam_tf.study import runs

HERE = os.path.dirname(os.path.abspath(__file__))
PAPER = os.path.join(os.path.dirname(HERE), 'configs', 'paper.py')
PRETRAIN = os.path.join(HERE, 'pretrain.py')
paper = config_lib.load(PAPER)


def parse(argv):
  parser = argparse_flags.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rows', required=True, help='tables and TABLE/ROW names, e.g. table4')
  parser.add_argument('--seeds', default='0', help='comma-separated pretraining seeds')
  parser.add_argument('--scale', required=True, choices=list(paper.SCALES))
  parser.add_argument('--out', required=True, help='the study folder: runs and tables')
  parser.add_argument('--print_commands', action='store_true',
                      help='print one pretraining command per run, then exit')
  parser.add_argument('--strategy', default='auto', help='scripts/pretrain.py --strategy')
  parser.add_argument('--evaluations', default=','.join(evaluate.KINDS),
                      help=f'comma-separated, of {", ".join(evaluate.KINDS)}')
  parser.add_argument('--eval_every', type=int, default=0,
                      help='also evaluate every N pretraining steps (a learning curve)')
  parser.add_argument('--curve_evaluations', default='probe',
                      help='the evaluations run at those steps too (the probe is the cheap one)')
  parser.add_argument('--eval_train', help='labelled folder the evaluations train on')
  parser.add_argument('--eval_val', help='labelled folder the evaluations are scored on')
  parser.add_argument('--num_classes', type=int, help='class ids 0..N-1 count')
  parser.add_argument('--ignore_index', type=int, default=255, help='label value to ignore')
  parser.add_argument('--eval_size', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'),
                      help='evaluation images and labels are resized to this')
  parser.add_argument('--eval_limit', type=int, help='only the first N images of each folder')
  parser.add_argument('--eval_train_images', type=int,
                      help='train the evaluations on N evenly spaced training images (few labels)')
  parser.add_argument('--finetune_steps', type=int, default=600)
  parser.add_argument('--finetune_batch_size', type=int, default=8)
  parser.add_argument('--finetune_lr', type=float, default=0.01)
  parser.add_argument('--finetune_crop', type=int, nargs=2, metavar=('H', 'W'),
                      help='fine-tuning crop (default: --eval_size)')
  parser.add_argument('--probe_epochs', type=int, default=30)
  parser.add_argument('--use_c4', action='store_true', help='FCN-16s head; probe on C4 + C5')
  args, rest = parser.parse_known_args(argv[1:])
  args.overrides = []
  for item in rest:
    if not item.startswith('--config.') or '=' not in item:
      parser.error(f'unrecognised argument {item!r} (overrides are --config.FIELD=VALUE)')
    args.overrides.append(item[len('--config.'):])
  try:
    args.seeds = [int(s) for s in args.seeds.split(',')]
  except ValueError:
    parser.error(f'--seeds takes comma-separated integers, got {args.seeds!r}')
  if args.eval_every < 0:
    parser.error(f'--eval_every must be >= 0, got {args.eval_every}')
  for name in ('evaluations', 'curve_evaluations'):
    kinds = getattr(args, name).split(',')
    unknown = set(kinds) - set(evaluate.KINDS)
    if unknown:
      parser.error(f'unknown --{name} {sorted(unknown)}; known: {", ".join(evaluate.KINDS)}')
    setattr(args, name, kinds)
  if not args.print_commands and not (args.eval_train and args.eval_val and args.num_classes):
    parser.error('--eval_train, --eval_val and --num_classes are needed to evaluate')
  return args


def evaluation_options(args):
  common = dict(num_classes=args.num_classes, ignore_index=args.ignore_index,
                use_c4=args.use_c4)
  options = {
      'finetune': dict(common, steps=args.finetune_steps, batch_size=args.finetune_batch_size,
                       lr=args.finetune_lr, crop=args.finetune_crop),
      'probe': dict(common, epochs=args.probe_epochs),
  }
  return {kind: options[kind] for kind in args.evaluations}


def main(args):
  try:
    selected = paper.rows(args.rows)
    rows = [runs.Row(name, f'{PAPER}:{arg}', paper.get_config(arg))
            for name, arg in ((n, f'{n},{args.scale}') for n in paper.PAPER_MIOU)]
    plan = runs.plan(rows, selected, args.seeds, args.out,
                     (sys.executable, PRETRAIN, f'--strategy={args.strategy}'), args.overrides,
                     args.eval_every)
  except config_lib.ConfigError as e:
    sys.exit(f'error: {e}')
  if args.print_commands:
    print('\n'.join(shlex.join(run.command) for run in plan.runs))
    return
  try:
    for run in runs.pending(plan.runs):
      logging.info('pretraining %s (%d steps)', run.workdir, run.config.train.steps)
      runs.pretrain(run)
  except (ValueError, RuntimeError) as e:  # a workdir of another config; a failed pretraining
    sys.exit(f'error: {e}')
  scores = evaluate.evaluate_all(
      plan.runs + plan.baselines, evaluation_options(args),
      evaluate.DataSpec(args.eval_train, args.eval_val, tuple(args.eval_size), args.num_classes,
                        args.eval_limit, args.eval_train_images),
      args.curve_evaluations)
  study = report.aggregate(
      plan, selected, scores, args.evaluations, paper.PAPER_MIOU,
      {name: table.title for name, table in paper.TABLES.items()}, paper.RANDOM_INIT_MIOU,
      scale=args.scale, rows=args.rows, eval_train=args.eval_train, eval_val=args.eval_val,
      eval_size=list(args.eval_size), eval_limit=args.eval_limit,
      eval_train_images=args.eval_train_images, eval_every=args.eval_every,
      curve_evaluations=args.curve_evaluations, options=evaluation_options(args))
  json_path, md_path = report.write(study, args.out)
  figure.draw(study, os.path.join(args.out, 'study.png'))
  with open(md_path) as f:
    print(f.read())
  logging.info('wrote %s, %s and study.png', json_path, md_path)


if __name__ == '__main__':
  app.run(main, flags_parser=parse)
