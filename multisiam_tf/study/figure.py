"""study.png: per table, bars of the final mIoU with error bars (std over seeds), the paper's
numbers marked, the random init as dashed lines; beside them the learning curves.

Drawn with PIL (a dependency already), so that the figure needs no plotting package.
"""

import math

from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from multisiam_tf import palette

KIND_COLOURS = {'finetune': (0, 114, 178), 'probe': (230, 159, 0)}
PAPER_COLOUR = (0, 0, 0)
GRID = (225, 225, 225)
BARS_WIDTH, CURVES_WIDTH, PANEL_HEIGHT = 820, 560, 330
MARGIN = dict(left=50, right=15, top=48, bottom=40)


def _font(size):
  return ImageFont.load_default(size=size)


class _Axes:
  """Data (x, y in %) to pixels inside one panel's plotting box; y from 0 to `top`."""

  def __init__(self, draw, box, x_range, top, title):
    self.draw, self.box, self.x_range, self.top = draw, box, x_range, top
    left, upper, right, lower = box
    font = _font(11)
    tick = 10 if top <= 60 else 20
    for value in range(0, int(top) + 1, tick):
      y = self.y(value)
      draw.line([(left, y), (right, y)], fill=GRID)
      draw.text((left - 6, y), f'{value}', fill=(80, 80, 80), font=font, anchor='rm')
    draw.line([(left, upper), (left, lower), (right, lower)], fill=(0, 0, 0))
    draw.text((left, upper - 30), title, fill=(0, 0, 0), font=_font(13))

  def x(self, value):
    lo, hi = self.x_range
    left, _, right, _ = self.box
    return left + (right - left) * (value - lo) / max(hi - lo, 1e-9)

  def y(self, percent):
    _, upper, _, lower = self.box
    return lower - (lower - upper) * percent / self.top

  def dashed(self, y_percent, colour):
    left, _, right, _ = self.box
    y = self.y(y_percent)
    for start in range(int(left), int(right), 12):
      self.draw.line([(start, y), (min(start + 6, right), y)], fill=colour, width=2)


def _top(values):
  """The y axis' top: 10 above the largest value, rounded up to 10."""
  return 10 * math.ceil((max(values, default=0) + 10) / 10)


def _bars(draw, box, table, study):
  kinds, rows, baseline = study['kinds'], table['rows'], study['random_init']
  values = [100 * (e[k]['mean'] + e[k]['std']) for e in rows + [baseline] for k in kinds
            if e[k]['mean'] is not None] + [e['paper_miou'] for e in rows if e['paper_miou']]
  axes = _Axes(draw, box, (0, max(len(rows), 4)), _top(values),  # bars of one width
               f'{table["title"]}: mIoU (%), mean and std over seeds; diamond: the paper\'s; '
               'dashed: random init')
  font, width = _font(11), 0.7 / len(kinds)
  for i, entry in enumerate(rows):
    for j, kind in enumerate(kinds):
      summary = entry[kind]
      if summary['mean'] is None:
        continue
      x0, x1 = axes.x(i + 0.15 + j * width), axes.x(i + 0.15 + (j + 1) * width) - 2
      mean, std = 100 * summary['mean'], 100 * summary['std']
      draw.rectangle([x0, axes.y(mean), x1, axes.y(0)], fill=KIND_COLOURS[kind])
      centre = (x0 + x1) / 2
      draw.line([(centre, axes.y(mean - std)), (centre, axes.y(mean + std))], fill=(0, 0, 0))
      for y in (mean - std, mean + std):
        draw.line([(centre - 4, axes.y(y)), (centre + 4, axes.y(y))], fill=(0, 0, 0))
    if entry['paper_miou'] is not None:
      cx, cy = axes.x(i + 0.5), axes.y(entry['paper_miou'])
      draw.polygon([(cx, cy - 6), (cx + 6, cy), (cx, cy + 6), (cx - 6, cy)], fill=PAPER_COLOUR)
    draw.text((axes.x(i + 0.5), box[3] + 6), entry['name'].partition('/')[2], fill=(0, 0, 0),
              font=font, anchor='ma')
  for kind in kinds:  # over the bars
    if baseline[kind]['mean'] is not None:
      axes.dashed(100 * baseline[kind]['mean'], KIND_COLOURS[kind])
  legend_x = box[0] + 5
  for kind in kinds:
    draw.rectangle([legend_x, box[1] - 12, legend_x + 10, box[1] - 2], fill=KIND_COLOURS[kind])
    draw.text((legend_x + 14, box[1] - 7), kind, fill=(0, 0, 0), font=font, anchor='lm')
    legend_x += 90


def _curves(draw, box, table, study):
  kinds, baseline = study['kinds'], study['random_init']
  points = [(p['step'], 100 * p['mean']) for e in table['rows'] + [baseline] for k in kinds
            for p in e[k]['curve']]
  last = max((s for s, _ in points), default=1)
  axes = _Axes(draw, box, (0, last), _top([v for _, v in points]),
               'by pretraining step: fine-tuned (thick), probe (thin); dashed: random init')
  font = _font(11)
  for kind in kinds:
    if baseline[kind]['mean'] is not None:
      axes.dashed(100 * baseline[kind]['mean'], KIND_COLOURS[kind])
  for i, entry in enumerate(table['rows']):
    colour = tuple(int(c) for c in palette.PALETTE[i % len(palette.PALETTE)])
    for kind in kinds:
      line = [(axes.x(p['step']), axes.y(100 * p['mean'])) for p in entry[kind]['curve']]
      thick = 3 if kind == 'finetune' else 1
      if len(line) > 1:
        draw.line(line, fill=colour, width=thick)
      for x, y in line:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    draw.text((box[2] - 110, box[1] + 4 + 14 * i), entry['name'].partition('/')[2], fill=colour,
              font=font)
  draw.text((box[2], box[3] + 6), f'{last}', fill=(0, 0, 0), font=font, anchor='ra')
  draw.text((box[0], box[3] + 6), '0', fill=(0, 0, 0), font=font, anchor='la')


def draw(study, path):
  """Writes the figure of a report.aggregate record to `path` (PNG)."""
  tables = study['tables']
  image = Image.new('RGB', (BARS_WIDTH + CURVES_WIDTH, PANEL_HEIGHT * len(tables)), 'white')
  canvas = ImageDraw.Draw(image)
  m = MARGIN
  for i, table in enumerate(tables):
    upper, lower = PANEL_HEIGHT * i + m['top'], PANEL_HEIGHT * (i + 1) - m['bottom']
    _bars(canvas, (m['left'], upper, BARS_WIDTH - m['right'], lower), table, study)
    _curves(canvas, (BARS_WIDTH + m['left'], upper, BARS_WIDTH + CURVES_WIDTH - m['right'],
                     lower), table, study)
  image.save(path)
