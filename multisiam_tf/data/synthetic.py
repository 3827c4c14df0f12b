"""Synthetic street scenes with class and instance masks: the embedded default dataset.

Each scene is a sky gradient over textured buildings, a road in perspective with lane marks and
pavement beside it, and 3-12 objects (cars, people, poles, signs, trees) standing on the ground:
nearer objects are larger and occlude farther ones (a depth buffer keyed on where they touch the
ground). Every class has its own colours, texture and shape, so a dense probe trained on `labels`
has something to learn, and several instances per image give MultiSiam what it is built for.
"""

import os
from typing import NamedTuple

import numpy as np
from PIL import Image

BACKGROUND_CLASSES = ('sky', 'building', 'road', 'pavement')
INSTANCE_CLASSES = ('car', 'person', 'pole', 'sign', 'tree')
CLASSES = BACKGROUND_CLASSES + INSTANCE_CLASSES
SKY, BUILDING, ROAD, PAVEMENT, CAR, PERSON, POLE, SIGN, TREE = range(len(CLASSES))

_CLASS_WEIGHTS = {CAR: 0.3, PERSON: 0.25, POLE: 0.15, SIGN: 0.1, TREE: 0.2}
# Height of an object touching the ground at the bottom row, as a fraction of the image height.
_NEAR_HEIGHT = {CAR: 0.45, PERSON: 0.75, POLE: 1.3, SIGN: 0.8, TREE: 1.2}
_WIDTH_PER_HEIGHT = {CAR: 1.9, PERSON: 0.38, POLE: 0.05, SIGN: 0.35, TREE: 0.7}
_MIN_VISIBLE_FRACTION = 0.3  # an instance must keep this much of itself in view
_MIN_VISIBLE_PIXELS = 12


class Scene(NamedTuple):
  image: np.ndarray  # uint8 [H, W, 3]
  labels: np.ndarray  # uint8 [H, W], index into CLASSES for every pixel
  instances: np.ndarray  # uint8 [H, W], 0 on background classes, 1..n per object


def make_scene(seed, height=160, width=240, min_instances=3, max_instances=12):
  """Draws one street scene, deterministic for `seed` (an int or a tuple of ints); a Scene."""
  if not 1 <= min_instances <= max_instances <= 255:
    raise ValueError(f'need 1 <= min_instances <= max_instances <= 255, got '
                     f'{min_instances}, {max_instances}')
  rng = np.random.default_rng(seed)
  image = np.zeros((height, width, 3), np.float32)
  labels = np.zeros((height, width), np.uint8)
  horizon = int(height * rng.uniform(0.35, 0.5))
  vanish_x = width * rng.uniform(0.35, 0.65)
  road = _draw_ground(rng, image, labels, horizon, vanish_x)
  _draw_sky(rng, image, labels, horizon)
  _draw_buildings(rng, image, labels, horizon)
  instances = _draw_objects(rng, image, labels, horizon, road,
                            rng.integers(min_instances, max_instances + 1))
  image += 0.015 * rng.standard_normal(image.shape, dtype=np.float32)  # sensor grain
  image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
  return Scene(image, labels, instances)


def write_dataset(out_dir, num, height=160, width=240, seed=0):
  """Writes `num` scenes in the CamVid layout a dense probe reads; returns the image paths.

  out_dir/images/NNNNN.png (RGB), labels/NNNNN.png (class id per pixel), instances/NNNNN.png
  (instance id per pixel, 0 = background classes) and classes.txt (one class name per line,
  line i = class id i).
  """
  for sub in ('images', 'labels', 'instances'):
    os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
  with open(os.path.join(out_dir, 'classes.txt'), 'w') as f:
    f.write('\n'.join(CLASSES) + '\n')
  paths = []
  for i in range(num):
    scene = make_scene((seed, i), height, width)
    name = f'{i:05d}.png'
    paths.append(os.path.join(out_dir, 'images', name))
    Image.fromarray(scene.image).save(paths[-1])
    Image.fromarray(scene.labels).save(os.path.join(out_dir, 'labels', name))
    Image.fromarray(scene.instances).save(os.path.join(out_dir, 'instances', name))
  return paths


def _value_noise(rng, height, width, cell):
  """Smooth noise in [0, 1]: random values on a grid of `cell` px, bilinearly interpolated."""
  cell = max(cell, 1.0)
  grid = rng.random((int(height / cell) + 2, int(width / cell) + 2)).astype(np.float32)
  ys, xs = np.arange(height) / cell, np.arange(width) / cell
  y0, x0 = ys.astype(int), xs.astype(int)
  fy, fx = (ys - y0)[:, None].astype(np.float32), (xs - x0)[None, :].astype(np.float32)
  top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
  bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
  return top * (1 - fy) + bottom * fy


def _textured(rng, colour, height, width, cell, strength):
  """A [h, w, 3] patch of `colour` modulated by value noise: the texture of a surface."""
  shade = 1.0 + strength * (2.0 * _value_noise(rng, height, width, cell) - 1.0)
  return np.asarray(colour, np.float32) * shade[..., None]


def _draw_sky(rng, image, labels, horizon):
  top, low = np.array([0.2, 0.4, 0.85]), np.array([0.7, 0.82, 0.95])
  top, low = top * rng.uniform(0.85, 1.1), low * rng.uniform(0.9, 1.05)
  t = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
  sky = top * (1 - t) + low * t
  clouds = _value_noise(rng, horizon, image.shape[1], image.shape[1] / 8.0)
  sky = sky + 0.35 * np.clip(clouds - 0.55, 0.0, None)[..., None]  # white-ish clouds
  image[:horizon] = sky
  labels[:horizon] = SKY


def _draw_ground(rng, image, labels, horizon, vanish_x):
  """Pavement below the horizon, a road narrowing to the vanishing point, lane marks."""
  height, width = labels.shape
  ground = height - horizon
  image[horizon:] = _textured(rng, rng.uniform(0.55, 0.7) * np.array([1.0, 0.97, 0.9]),
                              ground, width, max(width / 60.0, 2.0), 0.15)
  labels[horizon:] = PAVEMENT
  depth = (np.arange(ground, dtype=np.float32) + 0.5) / ground  # 0 at horizon, 1 at bottom
  centre = vanish_x + depth * (width / 2 - vanish_x) * rng.uniform(0.3, 1.0)
  half = depth * width * rng.uniform(0.3, 0.5)
  xs = np.arange(width, dtype=np.float32)[None, :]
  offset = (xs - centre[:, None]) / np.maximum(half[:, None], 1e-3)  # -1..1 across the road
  on_road = np.abs(offset) <= 1.0
  asphalt = _textured(rng, [rng.uniform(0.22, 0.32)] * 3, ground, width,
                      max(width / 100.0, 1.5), 0.2)
  # Dashes every fixed distance on the ground: uniform in 1 / depth under perspective.
  dashes = np.mod(rng.uniform(0, 1) + 6.0 / depth, 1.0)[:, None] < 0.5
  lane = (np.abs(offset) < 0.025 + 0.5 / np.maximum(half[:, None], 1.0)) & dashes
  edge = np.abs(np.abs(offset) - 0.93) < 0.02 + 0.5 / np.maximum(half[:, None], 1.0)
  asphalt[lane | edge] = [0.92, 0.92, 0.88]
  region = image[horizon:]
  region[on_road] = asphalt[on_road]
  labels[horizon:][on_road] = ROAD
  return centre, half


def _draw_buildings(rng, image, labels, horizon):
  """Facades of random width and height standing on the horizon, each with a window grid."""
  width = labels.shape[1]
  palette = ([0.62, 0.3, 0.22], [0.78, 0.72, 0.6], [0.5, 0.5, 0.52], [0.7, 0.62, 0.5],
             [0.45, 0.38, 0.35])
  x = -int(rng.uniform(0, 0.1) * width)
  while x < width:
    facade_w = int(width * rng.uniform(0.08, 0.25)) + 2
    top = int(horizon * rng.uniform(0.05, 0.8))
    bottom = min(horizon + 2, labels.shape[0])
    x0, x1 = max(x, 0), min(x + facade_w, width)
    if rng.random() < 0.85 and x1 > x0 and bottom > top:  # else a gap that shows the sky
      h, w = bottom - top, x1 - x0
      colour = np.array(palette[rng.integers(len(palette))]) * rng.uniform(0.85, 1.15)
      facade = _textured(rng, colour, h, w, max(width / 150.0, 1.0), 0.12)
      period = max(width * rng.uniform(0.02, 0.04), 3.0)
      ys, xs = np.mgrid[0:h, x0 - x:x1 - x].astype(np.float32)
      windows = (np.mod(ys, period) < 0.55 * period) & (np.mod(xs, period) < 0.5 * period)
      windows &= (ys > 0.5 * period) & (ys < h - period)
      facade[windows] = facade[windows] * 0.35 + np.array([0.1, 0.14, 0.2]) * 0.65
      image[top:bottom, x0:x1] = facade
      labels[top:bottom, x0:x1] = BUILDING
    x += facade_w


def _draw_objects(rng, image, labels, horizon, road, count):
  """Places `count` objects through a depth buffer; returns the instance mask.

  A candidate is rejected when it would show too little of itself or hide too much of an
  earlier one, so every instance stays visible and ids are 1..n without gaps.
  """
  height, width = labels.shape
  instances = np.zeros((height, width), np.uint8)
  depth_buffer = np.full((height, width), -np.inf, np.float32)
  areas = [0]
  classes = np.array(list(_CLASS_WEIGHTS))
  weights = np.array(list(_CLASS_WEIGHTS.values()))
  for _ in range(40 * count):
    if len(areas) > count:
      break
    class_id = int(rng.choice(classes, p=weights / weights.sum()))
    candidate = _object(rng, class_id, horizon, road, height, width)
    if candidate is None:
      continue
    (y0, x0), mask, colour, ground_y = candidate
    ys = slice(max(y0, 0), min(y0 + mask.shape[0], height))
    xs = slice(max(x0, 0), min(x0 + mask.shape[1], width))
    if ys.start >= ys.stop or xs.start >= xs.stop:
      continue
    mask = mask[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    colour = colour[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    visible = mask & (ground_y > depth_buffer[ys, xs])
    if visible.sum() < max(_MIN_VISIBLE_PIXELS, _MIN_VISIBLE_FRACTION * mask.sum()):
      continue
    hidden = np.bincount(instances[ys, xs][visible], minlength=len(areas))
    left = np.bincount(instances.ravel(), minlength=len(areas)) - hidden
    if any(left[i] < max(_MIN_VISIBLE_PIXELS, _MIN_VISIBLE_FRACTION * areas[i])
           for i in range(1, len(areas))):
      continue
    image[ys, xs][visible] = colour[visible]
    labels[ys, xs][visible] = class_id
    instances[ys, xs][visible] = len(areas)
    depth_buffer[ys, xs][visible] = ground_y
    areas.append(int(mask.sum()))
  return instances


def _object(rng, class_id, horizon, road, height, width):
  """Samples where a `class_id` object stands and renders it; None if it would be too small."""
  centre, half = road
  ground = height - horizon
  row = int(rng.uniform(0.08, 1.08) * ground)  # may stand just below the frame: cut at the bottom
  scale = (row + 0.5) / ground
  obj_h = int(_NEAR_HEIGHT[class_id] * height * scale * rng.uniform(0.8, 1.2))
  obj_w = max(int(obj_h * _WIDTH_PER_HEIGHT[class_id] * rng.uniform(0.85, 1.15)), 2)
  if obj_h < 8:
    return None
  r = min(row, ground - 1)
  if class_id == CAR:  # on the road, in some lane
    x = centre[r] + half[r] * rng.uniform(-0.7, 0.7)
  else:  # beside the road, or anywhere on the pavement far from it
    side = rng.choice([-1.0, 1.0])
    x = centre[r] + side * (half[r] + rng.uniform(0.02, 0.5) * width * scale)
  render = {CAR: _car, PERSON: _person, POLE: _pole, SIGN: _sign, TREE: _tree}[class_id]
  mask, colour = render(rng, obj_h, obj_w)
  top_left = (horizon + row - obj_h, int(x - obj_w / 2))
  return top_left, mask, colour, float(row)


def _grid(h, w):
  """Pixel-centre coordinates of an object's box, in [0, 1] of its height and width."""
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  return (ys + 0.5) / h, (xs + 0.5) / w


def _car(rng, h, w):
  y, x = _grid(h, w)
  body_colours = ([0.75, 0.1, 0.1], [0.1, 0.2, 0.65], [0.9, 0.9, 0.92], [0.6, 0.62, 0.65],
                  [0.08, 0.08, 0.1], [0.9, 0.75, 0.1])
  body_colour = np.array(body_colours[rng.integers(len(body_colours))])
  colour = _textured(rng, body_colour, h, w, max(w / 12.0, 1.0), 0.08)
  colour *= (1.15 - 0.3 * y)[..., None]  # lit from above
  body = (y > 0.38) & (y < 0.85) & (x > 0.02) & (x < 0.98)
  cabin = (y > 0.05) & (y <= 0.42) & (np.abs(x - 0.5) < 0.3 - 0.12 * (0.42 - y) / 0.37)
  glass = cabin & (y > 0.12) & (np.abs(x - 0.5) < 0.25 - 0.12 * (0.42 - y) / 0.37)
  glass &= np.abs(x - 0.5) > 0.015  # the pillar between the windows
  colour[glass] = [0.18, 0.25, 0.32]
  aspect = w / h
  wheels = np.zeros_like(body)
  for cx in (0.2, 0.8):
    d = np.hypot((x - cx) * aspect, y - 0.82)
    wheel = d < 0.17
    colour[wheel] = np.where((d < 0.08)[wheel][:, None], [0.6, 0.6, 0.62], [0.05, 0.05, 0.05])
    wheels |= wheel
  return body | cabin | wheels, colour


def _person(rng, h, w):
  y, x = _grid(h, w)
  aspect = w / h
  skin = np.array([[0.95, 0.8, 0.67], [0.75, 0.55, 0.4], [0.45, 0.3, 0.2]][rng.integers(3)])
  shirt = rng.uniform(0.1, 0.95, 3)
  trousers = rng.uniform(0.05, 0.35) * np.array([1.0, 1.0, 1.3])
  colour = np.empty((h, w, 3), np.float32)
  head = np.hypot((x - 0.5) * aspect, y - 0.07) < 0.065
  torso = (y > 0.13) & (y < 0.55) & (np.abs(x - 0.5) < 0.3)
  arms = (y > 0.15) & (y < 0.5) & (np.abs(x - 0.5) > 0.32) & (np.abs(x - 0.5) < 0.45)
  legs = (y >= 0.55) & (np.abs(np.abs(x - 0.5) - 0.13) < 0.1)
  colour[...] = skin
  colour[torso | arms] = _textured(rng, shirt, h, w, max(w / 4.0, 1.0), 0.25)[torso | arms]
  colour[legs] = trousers
  return head | torso | arms | legs, colour


def _pole(rng, h, w):
  y, x = _grid(h, w)
  metal = np.array([0.55, 0.57, 0.6]) * rng.uniform(0.7, 1.2)
  colour = _textured(rng, metal, h, w, max(h / 20.0, 1.0), 0.1)
  colour *= (0.75 + 0.5 * (1.0 - np.abs(2 * x - 1)))[..., None]  # a cylinder's shading
  return np.ones((h, w), bool), colour


def _sign(rng, h, w):
  y, x = _grid(h, w)
  aspect = w / h
  plate_y = 0.2  # plate centre, in object heights
  r = 0.45 * aspect  # plate radius in object heights: it fills the box width
  dy, dx = y - plate_y, (x - 0.5) * aspect
  shape = rng.integers(3)
  if shape == 0:  # round prohibition sign
    plate = np.hypot(dx, dy) < r
    inner = np.hypot(dx, dy) < 0.7 * r
    face, rim = [0.95, 0.95, 0.95], [0.85, 0.1, 0.1]
  elif shape == 1:  # triangular warning sign
    plate = (dy < 0.6 * r) & (np.abs(dx) < (dy + r) * 0.62) & (dy > -r)
    inner = (dy < 0.4 * r) & (np.abs(dx) < (dy + 0.6 * r) * 0.62) & (dy > -0.6 * r)
    face, rim = [0.98, 0.9, 0.3], [0.85, 0.1, 0.1]
  else:  # square information sign
    plate = (np.abs(dx) < r) & (np.abs(dy) < r)
    inner = (np.abs(dx) < 0.8 * r) & (np.abs(dy) < 0.8 * r)
    face, rim = [0.1, 0.3, 0.8], [0.95, 0.95, 0.95]
  post = (y > plate_y) & (np.abs(x - 0.5) < 0.06)
  colour = np.empty((h, w, 3), np.float32)
  colour[...] = [0.5, 0.5, 0.52]
  colour[plate] = rim
  colour[inner] = face
  return plate | post, colour


def _tree(rng, h, w):
  y, x = _grid(h, w)
  aspect = w / h
  green = np.array([0.15, 0.45, 0.12]) * rng.uniform(0.7, 1.3)
  colour = _textured(rng, green, h, w, max(w / 10.0, 1.0), 0.45)
  trunk = (y > 0.5) & (np.abs(x - 0.5) < 0.07)
  canopy = np.zeros_like(trunk)
  for _ in range(rng.integers(3, 6)):  # a crown of overlapping blobs
    cy, cx = rng.uniform(0.18, 0.45), rng.uniform(0.3, 0.7)
    radius = rng.uniform(0.12, 0.2)
    canopy |= np.hypot((x - cx) * aspect, y - cy) < radius
  bark = trunk & ~canopy
  colour[bark] = _textured(rng, [0.4, 0.26, 0.13], h, w, max(w / 20.0, 1.0), 0.2)[bark]
  return canopy | trunk, colour
