"""The bundled sim-to-real street scenes (spec: synthetic.md).

Real sim-to-real data (GTA5 -> Cityscapes) cannot ship, so we render our own: a "simulator"
domain A (flat saturated colours) and a "camera" domain B (textures, shading, blur, noise,
JPEG) of the same kind of scenes, unpaired, with Cityscapes label maps on both sides.

Every image is a pure function of (seed, split, domain, index), so any one of them can be
regenerated alone and the set can be rendered in parallel with identical bytes. A scene is
a few axis-aligned boxes, circles and ground strips in a 3-D street frame seen by a pinhole
camera (x right, y up, z forward, in metres), drawn far to near into a map of *keys*; a key
is a (material, tint, face) triple from which both the label id and each style's colour
follow, so labels and pixels can never disagree.
"""
import collections
import json
import multiprocessing
import os
import shutil

import numpy as np
from absl import logging
from PIL import Image, ImageDraw, ImageFilter

from tfattncut.progress import Progress

# ---------------------------------------------------------------------------------------
# Cityscapes labels.

CityscapesLabel = collections.namedtuple("CityscapesLabel", "id name train_id color")

# The official table (cityscapesscripts/helpers/labels.py), without license plate (id -1),
# which no uint8 label map can hold.
CITYSCAPES_LABELS = tuple(CityscapesLabel(*row) for row in (
    (0, "unlabeled", 255, (0, 0, 0)),
    (1, "ego vehicle", 255, (0, 0, 0)),
    (2, "rectification border", 255, (0, 0, 0)),
    (3, "out of roi", 255, (0, 0, 0)),
    (4, "static", 255, (0, 0, 0)),
    (5, "dynamic", 255, (111, 74, 0)),
    (6, "ground", 255, (81, 0, 81)),
    (7, "road", 0, (128, 64, 128)),
    (8, "sidewalk", 1, (244, 35, 232)),
    (9, "parking", 255, (250, 170, 160)),
    (10, "rail track", 255, (230, 150, 140)),
    (11, "building", 2, (70, 70, 70)),
    (12, "wall", 3, (102, 102, 156)),
    (13, "fence", 4, (190, 153, 153)),
    (14, "guard rail", 255, (180, 165, 180)),
    (15, "bridge", 255, (150, 100, 100)),
    (16, "tunnel", 255, (150, 120, 90)),
    (17, "pole", 5, (153, 153, 153)),
    (18, "polegroup", 255, (153, 153, 153)),
    (19, "traffic light", 6, (250, 170, 30)),
    (20, "traffic sign", 7, (220, 220, 0)),
    (21, "vegetation", 8, (107, 142, 35)),
    (22, "terrain", 9, (152, 251, 152)),
    (23, "sky", 10, (70, 130, 180)),
    (24, "person", 11, (220, 20, 60)),
    (25, "rider", 12, (255, 0, 0)),
    (26, "car", 13, (0, 0, 142)),
    (27, "truck", 14, (0, 0, 70)),
    (28, "bus", 15, (0, 60, 100)),
    (29, "caravan", 255, (0, 0, 90)),
    (30, "trailer", 255, (0, 0, 110)),
    (31, "train", 16, (0, 80, 100)),
    (32, "motorcycle", 17, (0, 0, 230)),
    (33, "bicycle", 18, (119, 11, 32)),
))
IGNORE_TRAIN_ID = 255
# Label id -> train id (19 classes, 0..18; IGNORE_TRAIN_ID for the rest).
CITYSCAPES_TRAIN_IDS = {label.id: label.train_id for label in CITYSCAPES_LABELS}
# The 19 training classes in train-id order.
TRAIN_CLASSES = tuple(label.name for label in sorted(
    (l for l in CITYSCAPES_LABELS if l.train_id != IGNORE_TRAIN_ID), key=lambda l: l.train_id))
# A 256-entry lookup table (label id -> train id), e.g. for tf.gather in input pipelines.
TRAIN_ID_LUT = np.full(256, IGNORE_TRAIN_ID, np.uint8)
for _id, _train_id in CITYSCAPES_TRAIN_IDS.items():
    TRAIN_ID_LUT[_id] = _train_id

ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_LIGHT, VEGETATION, SKY, CAR = 7, 8, 11, 17, 19, 21, 23, 26
# The label ids the scenes use.
SCENE_LABEL_IDS = (ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_LIGHT, VEGETATION, SKY, CAR)


def to_train_ids(label_ids):
    """Maps Cityscapes label ids (any integer array) to uint8 train ids; unknown ids -> 255."""
    label_ids = np.asarray(label_ids)
    known = (label_ids >= 0) & (label_ids < TRAIN_ID_LUT.size)
    return np.where(known, TRAIN_ID_LUT[np.where(known, label_ids, 0)], IGNORE_TRAIN_ID
                    ).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Materials and the two styles' palettes.

Material = collections.namedtuple("Material", "label a_color b_color")
_RED, _AMBER, _GREEN = 0, 1, 2     # lamp tints
_TAIL, _HEAD = 0, 1                # car light tints
# Tinted materials take their colour from a palette indexed by the key's tint, so that a
# red car in an A scene is a dark-red car when the same scene is rendered in the B style.
_MATERIALS = {
    "sky": Material(SKY, (90, 170, 255), None),  # B: a graded sky, see _sky
    "road": Material(ROAD, (62, 62, 78), (0.30, 0.30, 0.31)),
    "lane": Material(ROAD, (255, 255, 255), (0.78, 0.78, 0.74)),
    "sidewalk": Material(SIDEWALK, (205, 190, 160), (0.55, 0.53, 0.50)),
    "curb": Material(SIDEWALK, (175, 175, 185), (0.64, 0.63, 0.60)),
    "wall": Material(BUILDING, (
        (235, 120, 55), (60, 160, 215), (230, 205, 70), (200, 65, 65),
        (150, 105, 210), (100, 195, 115), (205, 205, 205), (245, 150, 175)), (
        (0.70, 0.64, 0.52), (0.55, 0.55, 0.55), (0.55, 0.33, 0.26), (0.72, 0.62, 0.45),
        (0.38, 0.38, 0.40), (0.80, 0.76, 0.66), (0.45, 0.36, 0.30), (0.55, 0.60, 0.64))),
    "window": Material(BUILDING, (40, 90, 175), (0.20, 0.23, 0.27)),
    "crown": Material(VEGETATION, (40, 175, 50), (0.22, 0.31, 0.15)),
    "trunk": Material(VEGETATION, (135, 80, 30), (0.28, 0.22, 0.17)),
    "pole": Material(POLE, (170, 170, 185), (0.42, 0.43, 0.44)),
    "light_box": Material(TRAFFIC_LIGHT, (30, 30, 30), (0.11, 0.11, 0.11)),
    "lamp_on": Material(TRAFFIC_LIGHT, ((255, 0, 0), (255, 190, 0), (0, 255, 100)),
                        ((0.95, 0.25, 0.15), (1.0, 0.70, 0.20), (0.30, 0.95, 0.60))),
    "lamp_off": Material(TRAFFIC_LIGHT, (70, 70, 60), (0.18, 0.18, 0.16)),
    "car_body": Material(CAR, (
        (225, 30, 30), (30, 80, 225), (250, 210, 20), (30, 180, 60),
        (240, 240, 240), (30, 30, 35), (250, 130, 20), (20, 200, 220)), (
        (0.45, 0.10, 0.10), (0.15, 0.20, 0.35), (0.60, 0.55, 0.45), (0.15, 0.25, 0.20),
        (0.85, 0.85, 0.84), (0.10, 0.10, 0.11), (0.62, 0.63, 0.65), (0.35, 0.36, 0.38))),
    "glass": Material(CAR, (60, 110, 165), (0.10, 0.12, 0.15)),
    "wheel": Material(CAR, (20, 20, 20), (0.06, 0.06, 0.06)),
    "car_light": Material(CAR, ((255, 40, 40), (255, 255, 200)),
                          ((0.70, 0.08, 0.06), (0.90, 0.90, 0.85))),
}
_FRONT, _FACING_RIGHT, _FACING_LEFT, _TOP = range(4)   # faces of a box, for flat shading
# A's flat shading per face: a fixed light from the upper left.
_A_FACE_SHADE = np.array([1.0, 0.82, 0.68, 1.1], np.float32)
_GROUND = ("road", "lane", "sidewalk", "curb")


def _material_color(table, tint):
    return table[tint] if isinstance(table[0], (tuple, list)) else table


# ---------------------------------------------------------------------------------------
# Scene geometry.

class _Scene:
    """A pinhole camera over a flat street; draws 3-D primitives into a key map."""

    def __init__(self, rng, size):
        self.size = size
        self.horizon = size * rng.uniform(0.35, 0.50)
        self.vanish_x = size * (0.5 + rng.uniform(-0.08, 0.08))
        self.focal = size * rng.uniform(0.55, 0.8)
        self.height = rng.uniform(2.2, 3.5)
        # Depth seen by the bottom image row: nothing is placed closer.
        self.z_min = self.focal * self.height / (size - self.horizon)
        self.keys = {}
        self.shadows = []   # (x, y, rx, ry) image ellipses where B darkens the ground
        self.image = Image.new("L", (size, size), self.key("sky"))
        self.draw = ImageDraw.Draw(self.image)

    def key(self, material, tint=0, face=_FRONT):
        """The map value of a (material, tint, face); a scene has well under 256 of them."""
        spec = (material, tint, face)
        if spec not in self.keys:
            self.keys[spec] = len(self.keys)
        return self.keys[spec]

    def project(self, x, y, z):
        return (self.vanish_x + self.focal * x / z,
                self.horizon + self.focal * (self.height - y) / z)

    def polygon(self, points, material, tint=0, face=_FRONT):
        self.draw.polygon([self.project(*p) for p in points],
                          fill=self.key(material, tint, face))

    def polygons(self, x, y, z, material):
        """Many polygons of one material at once; x, y, z: [polygons, corners]."""
        fill = self.key(material)
        for px, py in zip(*self.project(x, y, z)):
            self.draw.polygon(list(zip(px.tolist(), py.tolist())), fill=fill)

    def disc(self, x, y, z, radius, material, tint=0):
        """A sphere (tree crown lump, lamp) seen as a circle."""
        cx, cy = self.project(x, y, z)
        r = self.pixels(radius, z)
        self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=self.key(material, tint))

    def ground_strip(self, x0, x1, z0, z1, material):
        self.polygon([(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)], material)

    def box(self, lo, hi, material, tint=0):
        """Draws the faces of the box [lo, hi] that the camera sees (they never overlap).

        Returns the visible vertical faces as (origin, u axis, width) so that callers can
        lay out windows on them; a point on a face is origin + u * axis + v * up.
        """
        (x0, y0, z0), (x1, y1, z1) = lo, hi
        faces = [(_FRONT, (x0, 0, z0), (1, 0, 0), x1 - x0)]
        if x1 < 0:
            faces.append((_FACING_RIGHT, (x1, 0, z0), (0, 0, 1), z1 - z0))
        if x0 > 0:
            faces.append((_FACING_LEFT, (x0, 0, z0), (0, 0, 1), z1 - z0))
        for face, origin, axis, width in faces:
            self.polygon([_on_face(origin, axis, u, v) for u, v in
                          ((0, y0), (width, y0), (width, y1), (0, y1))], material, tint, face)
        if y1 < self.height:
            self.polygon([(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)],
                         material, tint, _TOP)
        return [(origin, axis, width) for _, origin, axis, width in faces]

    def pixels(self, length, z):
        return self.focal * length / z


def _on_face(origin, axis, u, v):
    return (origin[0] + u * axis[0], v, origin[2] + u * axis[2])


def _draw_street(scene, rng):
    """Ground, road, curbs, markings; returns the road's and sidewalks' x extents."""
    size = scene.size
    scene.draw.rectangle((0, int(np.ceil(scene.horizon)), size, size),
                         fill=scene.key("sidewalk"))
    width = rng.uniform(6.0, 10.0)
    left = -width / 2 + rng.uniform(-0.2, 0.2) * width
    right = left + width
    walk_left, walk_right = rng.uniform(2.0, 5.0, size=2)
    near, far = 0.5 * scene.z_min, 1e4
    scene.ground_strip(left - 0.25, right + 0.25, near, far, "curb")
    scene.ground_strip(left, right, near, far, "road")
    for x in (left + 0.25, right - 0.4):
        scene.ground_strip(x, x + 0.15, near, 150.0, "lane")
    centre = (left + right) / 2
    z = np.arange(near + rng.uniform(0, 9.0), 120.0, 9.0)[:, None] + np.array([0, 0, 3.0, 3.0])
    x = np.broadcast_to(centre + np.array([-0.08, 0.08, 0.08, -0.08]), z.shape)
    scene.polygons(x, np.zeros_like(z), z, "lane")
    return left, right, left - walk_left, right + walk_right


def _draw_building(scene, rng, lo, hi, tint):
    """A box with a grid of windows on each visible face."""
    faces = scene.box(lo, hi, "wall", tint)
    floor = rng.uniform(3.0, 3.6)
    window_w, window_h = rng.uniform(0.9, 1.6), rng.uniform(1.2, 1.8)
    spacing = window_w + rng.uniform(1.0, 2.5)
    floors = np.arange(1.0, hi[1] - window_h - 0.5, floor)
    corners_u = np.array([0, window_w, window_w, 0])
    corners_v = np.array([0, 0, window_h, window_h])
    for origin, axis, width in faces:
        u, v = np.meshgrid(np.arange(0.6, width - window_w - 0.4, spacing), floors)
        u = u.reshape(-1, 1) + corners_u    # [windows, 4 corners]
        v = v.reshape(-1, 1) + corners_v
        z = origin[2] + u * axis[2]
        visible = scene.pixels(window_h, z.max(1)) >= 1.5   # smaller ones would only alias
        scene.polygons(origin[0] + u[visible] * axis[0], v[visible], z[visible], "window")


def _buildings(rng, street):
    """2-6 buildings: along either side of the street or across its far end."""
    _, _, walk_left, walk_right = street
    buildings = []
    for _ in range(rng.integers(2, 7)):
        tint = int(rng.integers(0, 8))
        height = rng.uniform(6.0, 32.0)
        side = rng.choice(3, p=(0.4, 0.4, 0.2))
        if side == 2:
            z0 = rng.uniform(50.0, 120.0)
            x0 = rng.uniform(-30.0, 20.0)
            lo, hi = (x0, 0, z0), (x0 + rng.uniform(10.0, 40.0), height, z0 + 15.0)
        else:
            z0 = rng.uniform(4.0, 60.0)
            z1 = z0 + rng.uniform(8.0, 30.0)
            setback = rng.uniform(0.0, 1.5)
            if side == 0:
                lo, hi = (walk_left - setback - 15.0, 0, z0), (walk_left - setback, height, z1)
            else:
                lo, hi = (walk_right + setback, 0, z0), (walk_right + setback + 15.0, height, z1)
        buildings.append((lo, hi, tint))
    return buildings


def _tree(scene, rng, x, z):
    trunk = rng.uniform(2.0, 3.5)
    radius = rng.uniform(1.2, 2.8)
    scene.box((x - 0.15, 0, z), (x + 0.15, trunk, z + 0.3), "trunk")
    for _ in range(rng.integers(3, 6)):
        dx, dy = rng.uniform(-0.5, 0.5, size=2) * radius
        scene.disc(x + dx, trunk + 0.7 * radius + dy, z, radius * rng.uniform(0.6, 0.9), "crown")
    r = scene.pixels(radius, z)
    scene.shadows.append((*scene.project(x, 0, z), r, 0.3 * r))


def _pole(scene, rng, x, z, toward_road):
    height = rng.uniform(4.0, 7.0)
    scene.box((x - 0.08, 0, z), (x + 0.08, height, z + 0.16), "pole")
    if rng.random() < 0.6:
        arm = rng.uniform(0.0, 2.0) * toward_road
        light_x = x + arm
        if arm:
            scene.box((min(x, light_x), height - 0.2, z), (max(x, light_x), height - 0.1, z + 0.1),
                      "pole")
        top = height - 0.1
        scene.box((light_x - 0.18, top - 0.95, z), (light_x + 0.18, top, z + 0.3), "light_box")
        lit = int(rng.integers(0, 3))
        for lamp in range(3):
            y = top - 0.17 - 0.3 * lamp
            scene.disc(light_x, y, z - 0.01, 0.11, "lamp_on" if lamp == lit else "lamp_off",
                       (_RED, _AMBER, _GREEN)[lamp])


def _car(scene, rng, x, z, oncoming):
    """Two boxes (body, cabin) on four wheels; oncoming cars show headlights."""
    width, length = rng.uniform(1.7, 1.95), rng.uniform(4.0, 4.8)
    body_top, roof = rng.uniform(0.95, 1.05), rng.uniform(1.4, 1.6)
    tint = int(rng.integers(0, 8))
    x0, x1 = x - width / 2, x + width / 2
    for wz in (z + length - 1.2, z + 0.5):
        for wx in (x0, x1 - 0.3):
            scene.box((wx, 0, wz), (wx + 0.3, 0.6, wz + 0.65), "wheel")
    scene.box((x0, 0.3, z), (x1, body_top, z + length), "car_body", tint)
    inset = 0.12 * width
    cabin_z0, cabin_z1 = z + 0.25 * length, z + 0.75 * length
    scene.box((x0 + inset, body_top, cabin_z0), (x1 - inset, roof, cabin_z1), "glass")
    scene.box((x0 + inset + 0.05, roof - 0.06, cabin_z0 + 0.05),
              (x1 - inset - 0.05, roof, cabin_z1 - 0.05), "car_body", tint)
    light = _HEAD if oncoming else _TAIL
    for lx in (x0 + 0.1, x1 - 0.4):
        scene.polygon([(lx, 0.65, z - 0.01), (lx + 0.3, 0.65, z - 0.01),
                       (lx + 0.3, 0.82, z - 0.01), (lx, 0.82, z - 0.01)], "car_light", light)
    cx, cy = scene.project(x, 0, z + 0.3 * length)
    scene.shadows.append((cx, cy, 0.65 * scene.pixels(width, z), 0.25 * scene.pixels(width, z)))


def _draw_scene(rng, size):
    """Draws one random street scene; returns the _Scene (key map, keys, shadows)."""
    scene = _Scene(rng, size)
    street = _draw_street(scene, rng)
    road_left, road_right, walk_left, walk_right = street
    # Buildings stand behind the sidewalks, so they go first (far to near).
    for lo, hi, tint in sorted(_buildings(rng, street), key=lambda b: -b[0][2]):
        _draw_building(scene, rng, lo, hi, tint)
    objects = []   # (depth, draw) for trees, poles and cars, painted far to near
    z_lo = scene.z_min + 1.0
    for _ in range(rng.integers(0, 5)):
        left = rng.random() < 0.5
        edge, walk = (road_left, walk_left) if left else (road_right, walk_right)
        x = edge + np.sign(walk - edge) * rng.uniform(0.6, max(0.7, abs(walk - edge) - 0.4))
        z = rng.uniform(max(z_lo, 5.0), 45.0)
        objects.append((z, lambda x=x, z=z: _tree(scene, rng, x, z)))
    for _ in range(rng.integers(0, 3)):
        left = rng.random() < 0.5
        x = road_left - 0.5 if left else road_right + 0.5
        z = rng.uniform(max(z_lo, 6.0), 40.0)
        objects.append((z, lambda x=x, z=z, s=(1 if left else -1): _pole(scene, rng, x, z, s)))
    taken = []
    width = road_right - road_left
    for _ in range(rng.integers(0, 4)):
        oncoming = rng.random() < 0.5
        x = road_left + width * (0.25 if oncoming else 0.75) + rng.uniform(-0.3, 0.3)
        z = z_lo + 0.5 + 50.0 * rng.random() ** 1.5   # mostly near: far cars are specks
        if any(o == oncoming and abs(z - tz) < 6.0 for o, tz in taken):
            continue  # a car cannot stand inside another
        taken.append((oncoming, z))
        objects.append((z, lambda x=x, z=z, o=oncoming: _car(scene, rng, x, z, o)))
    for _, draw in sorted(objects, key=lambda o: -o[0]):
        draw()
    return scene


# ---------------------------------------------------------------------------------------
# Styles.

def _key_table(scene, field):
    return [field(*spec) for spec in sorted(scene.keys, key=scene.keys.get)]


def _style_a(scene):
    """Flat saturated palette colours, hard edges, no noise."""
    def color(material, tint, face):
        rgb = np.array(_material_color(_MATERIALS[material].a_color, tint), np.float32)
        return np.clip(rgb * _A_FACE_SHADE[face], 0, 255)
    lut = np.array(_key_table(scene, color)).astype(np.uint8)
    return lut[np.asarray(scene.image)]


def _value_noise(rng, size, cells):
    """Smooth zero-mean unit-variance noise with `cells` (rows, cols) features per image."""
    coarse = rng.standard_normal(cells).astype(np.float32)
    noise = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    return (noise - noise.mean()) / (noise.std() + 1e-6)


def _sky(rng, size, horizon):
    """A vertical gradient (clear, hazy or overcast) with drifting clouds."""
    zenith = np.array(((0.42, 0.60, 0.85), (0.62, 0.70, 0.80), (0.68, 0.70, 0.74))[
        rng.integers(0, 3)], np.float32) * rng.uniform(0.9, 1.1, 3)
    near_horizon = 0.5 * zenith + 0.45
    t = np.clip(np.arange(size) / max(horizon, 1.0), 0, 1)[:, None, None]
    sky = (zenith * (1 - t) + near_horizon * t).astype(np.float32)
    clouds = np.clip(_value_noise(rng, size, (10, 4)) - rng.uniform(-0.3, 1.0), 0, 1)[..., None]
    return sky * (1 - 0.8 * clouds) + rng.uniform(0.8, 0.95) * 0.8 * clouds


# B texture amplitudes per material: (per-pixel grain, clumps, large blotches).
_B_TEXTURE = {
    "road": (0.10, 0.06, 0.10), "lane": (0.06, 0.12, 0.06), "sidewalk": (0.06, 0.05, 0.08),
    "curb": (0.05, 0.05, 0.05), "wall": (0.04, 0.06, 0.08), "window": (0.03, 0.25, 0.2),
    "crown": (0.15, 0.35, 0.1), "trunk": (0.12, 0.1, 0.0),
}
_B_TEXTURE_DEFAULT = (0.03, 0.04, 0.05)


def _channel_sum(x):
    """x[..., 0] + x[..., 1] + x[..., 2]: several times faster than x.sum(-1) on small images,
    and unlike matmul it starts no BLAS threads that compete with the worker processes."""
    return x[..., 0] + x[..., 1] + x[..., 2]


def _style_b(scene, rng):
    """The camera look: varied palette, textures, shading, shadows, blur, grading, noise.

    Returns (uint8 image [H, W, 3], JPEG quality).
    """
    size, keys = scene.size, np.asarray(scene.image).astype(np.intp)
    specs = sorted(scene.keys, key=scene.keys.get)   # (material, tint, face) per key
    # Light from a random side: which vertical faces are lit changes per image.
    lit, shaded = rng.uniform(0.85, 1.0), rng.uniform(0.55, 0.75)
    face_shade = (rng.uniform(0.8, 0.95), *((lit, shaded) if rng.random() < 0.5
                                            else (shaded, lit)), 1.1)
    jitter = {}   # one palette draw per (material, tint), shared by all faces of an object
    brick_tints = rng.random(8) < 0.5
    colors, textures, bricks = [], [], []
    for material, tint, face in specs:
        if (material, tint) not in jitter:
            jitter[material, tint] = rng.uniform(0.85, 1.15) * rng.uniform(0.93, 1.07, 3)
        table = _MATERIALS[material].b_color
        base = np.ones(3) if table is None else np.array(_material_color(table, tint))
        colors.append(base * jitter[material, tint] * face_shade[face])
        textures.append(_B_TEXTURE.get(material, _B_TEXTURE_DEFAULT))
        bricks.append(material == "wall" and brick_tints[tint])
    sky = np.array([m == "sky" for m, _, _ in specs])[keys]
    ground = np.array([m in _GROUND for m, _, _ in specs])[keys]
    brick = np.array(bricks)[keys]
    # Per-pixel grain, clumps and large blotches, weighted per material.
    fields = np.stack([rng.standard_normal((size, size)).astype(np.float32),
                       _value_noise(rng, size, (24, 24)), _value_noise(rng, size, (5, 5))], -1)
    texture = _channel_sum(np.take(np.array(textures, np.float32), keys, 0) * fields)
    image = np.take(np.array(colors, np.float32), keys, 0) * (1 + texture[..., None])
    # Brick courses (mortar rows and staggered joints) on some of the wall colours.
    course = max(3, round(size / 40))
    rows, cols = np.arange(size)[:, None], np.arange(size)[None, :]
    mortar = (rows % course == 0) | ((cols + (rows // course % 2) * course) % (2 * course) == 0)
    image *= np.where(brick & mortar, 0.78, 1.0).astype(np.float32)[..., None]
    image = np.where(sky[..., None], _sky(rng, size, scene.horizon), image)
    # Soft contact shadows of cars and trees on the ground.
    shadow = Image.new("L", (size, size), 0)
    for x, y, rx, ry in scene.shadows:
        ImageDraw.Draw(shadow).ellipse((x - rx, y - ry, x + rx, y + ry), fill=255)
    shadow = np.asarray(shadow.filter(ImageFilter.GaussianBlur(size / 100)), np.float32)
    image *= 1 - (rng.uniform(0.3, 0.6) / 255 * shadow * ground)[..., None]
    # Lens blur, then the camera's processing: exposure, white balance, saturation, gamma.
    image = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
    image = np.asarray(image.filter(ImageFilter.GaussianBlur(size / 128 * rng.uniform(0.3, 0.7))),
                       np.float32) / 255
    warmth = rng.uniform(-0.08, 0.08)
    image *= np.array([1 + warmth, 1, 1 - warmth], np.float32) * rng.uniform(0.8, 1.15)
    gray = _channel_sum(image)[..., None] / 3
    image = np.clip(gray + rng.uniform(0.6, 0.9) * (image - gray), 0, 1) ** rng.uniform(0.9, 1.1)
    radius2 = ((rows - size / 2) ** 2 + (cols - size / 2) ** 2) / (size ** 2 / 2)
    image *= (1 - rng.uniform(0.15, 0.4) * radius2).astype(np.float32)[..., None]
    image += rng.uniform(0.008, 0.025) * rng.standard_normal(image.shape, np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), int(rng.integers(75, 91))


# ---------------------------------------------------------------------------------------
# One example.

Example = collections.namedtuple("Example", "image labels jpeg_quality")
_SPLITS = ("train", "test")
# testA_as_B: the geometry of testA's scene, rendered in the B style.
_DOMAINS = ("A", "B", "A_as_B")
MIN_SIZE = 64


def render_example(split, domain, index, size=128, seed=0):
    """Renders one image of the data set, exactly as generate_dataset writes it.

    Args:
      split: "train" or "test".
      domain: "A" (simulator), "B" (camera) or "A_as_B" (the A scene in the B style).
    Returns:
      Example(image uint8 [size, size, 3], labels uint8 [size, size] Cityscapes label ids,
      jpeg_quality: the quality B images are saved at; None for A).
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}; got {split!r}")
    if domain not in _DOMAINS:
        raise ValueError(f"domain must be one of {_DOMAINS}; got {domain!r}")
    _check_size(size)
    geometry_domain = "A" if domain == "A_as_B" else domain

    def rng(domain, stream):
        return np.random.default_rng(
            [seed, _SPLITS.index(split), _DOMAINS.index(domain), index, stream])

    scene = _draw_scene(rng(geometry_domain, 0), size)
    labels = np.array(_key_table(scene, lambda m, t, f: _MATERIALS[m].label), np.uint8)[
        np.asarray(scene.image)]
    if domain == "A":
        return Example(_style_a(scene), labels, None)
    image, quality = _style_b(scene, rng(domain, 1))
    return Example(image, labels, quality)


def _check_size(size):
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE} (the scenes' windows, poles "
                         f"and lane marks need the room); got {size!r}")


# ---------------------------------------------------------------------------------------
# The data set on disk.

MANIFEST = "manifest.json"
_FORMAT = "tfattncut-synthetic-street"
# Bump whenever the renderer's output changes, so ensure_dataset notices old sets.
_VERSION = 1
# Spawning workers costs about a second of imports; below this many images serial wins.
_MIN_PARALLEL_JOBS = 256


def _folders(num_train, num_test):
    """Folder -> (split, domain, count, labels folder or None) in writing order."""
    folders = {}
    for split, count in (("train", num_train), ("test", num_test)):
        for domain in ("A", "B"):
            folders[f"{split}{domain}"] = (split, domain, count, f"{split}{domain}_labels")
    folders["testA_as_B"] = ("test", "A_as_B", num_test, None)
    return folders


def _write_example(job):
    root, folder, labels_folder, split, domain, index, size, seed = job
    example = render_example(split, domain, index, size, seed)
    stem = f"{index:06d}"
    image = Image.fromarray(example.image)
    if example.jpeg_quality is None:
        image.save(os.path.join(root, folder, stem + ".png"))
    else:
        image.save(os.path.join(root, folder, stem + ".jpg"), quality=example.jpeg_quality)
    if labels_folder:
        Image.fromarray(example.labels).save(os.path.join(root, labels_folder, stem + ".png"))


def _labels_json():
    by_id = {label.id: label for label in CITYSCAPES_LABELS}
    used = [by_id[i] for i in SCENE_LABEL_IDS]
    return {
        "labels": [dict(l._asdict(), color=list(l.color)) for l in used],
        "ignore_train_id": IGNORE_TRAIN_ID,
        "train_ids": {str(i): t for i, t in CITYSCAPES_TRAIN_IDS.items()},
        "train_classes": [
            {"train_id": l.train_id, "name": l.name, "color": list(l.color)}
            for l in sorted(CITYSCAPES_LABELS, key=lambda l: l.train_id)
            if l.train_id != IGNORE_TRAIN_ID],
    }


_README = """\
tfattncut synthetic sim-to-real street scenes (tfattncut/data/synthetic.py).

Regenerate: python -m launch.make_synthetic --out=<this folder> --size={size} \\
    --num_train={num_train} --num_test={num_test} --seed={seed}

trainA, testA            domain A, "simulator": flat colours, PNG
trainB, testB            domain B, "camera": textures, blur, noise, JPEG (quality 75-90)
*_labels                 label maps (uint8 PNG, Cityscapes label ids, same stem as the image)
testA_as_B               each testA scene rendered in the B style (labels: testA_labels);
                         for paired fidelity metrics only, never for training
labels.json              the label ids, names, colours and the 19-class train-id mapping
manifest.json            the generation arguments and file counts; written last
A and B scenes are drawn independently: the training sets are unpaired.
"""


def _read_manifest(out_dir):
    try:
        with open(os.path.join(out_dir, MANIFEST)) as f:
            manifest = json.load(f)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return manifest if manifest.get("format") == _FORMAT else None


def _is_complete(out_dir, manifest):
    for folder, count in manifest["counts"].items():
        path = os.path.join(out_dir, folder)
        if not os.path.isdir(path) or len(os.listdir(path)) != count:
            return False
    return True


def _check_arguments(size, num_train, num_test, seed):
    _check_size(size)
    for name, value in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")


def generate_dataset(out_dir, size=128, num_train=1000, num_test=100, seed=0, progress=True,
                     num_workers=None):
    """Renders the whole data set into out_dir (layout: see _README).

    The set is built in a sibling folder and renamed into place, so a crash never leaves a
    set that looks complete. An earlier synthetic set in out_dir is replaced; any other
    non-empty out_dir is refused rather than overwritten.

    Args:
      size: image height and width in pixels, >= 64.
      num_train, num_test: images per domain in each split.
      progress: show the progress (tfattncut.progress).
      num_workers: processes; None: up to 2, and none for small sets.
    Returns:
      {folder: number of files written}.
    """
    _check_arguments(size, num_train, num_test, seed)
    out_dir = os.path.normpath(out_dir)
    existing = _read_manifest(out_dir)
    if existing is None and os.path.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(f"{out_dir} holds files but no synthetic data set ({MANIFEST}); "
                              f"choose an empty or new output folder")
    folders = _folders(num_train, num_test)
    tmp_dir = f"{out_dir}.partial-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    jobs = []
    for folder, (split, domain, count, labels_folder) in folders.items():
        for sub in (folder, labels_folder):
            if sub:
                os.makedirs(os.path.join(tmp_dir, sub))
        jobs += [(tmp_dir, folder, labels_folder, split, domain, i, size, seed)
                 for i in range(count)]
    if num_workers is None:
        num_workers = 1 if len(jobs) < _MIN_PARALLEL_JOBS else min(2, os.cpu_count() or 1)
    try:
        _run(jobs, num_workers, progress)
        with open(os.path.join(tmp_dir, "labels.json"), "w") as f:
            json.dump(_labels_json(), f, indent=1)
        arguments = dict(size=size, num_train=num_train, num_test=num_test, seed=seed)
        with open(os.path.join(tmp_dir, "README.txt"), "w") as f:
            f.write(_README.format(**arguments))
        counts = {}
        for folder, (_, _, count, labels_folder) in folders.items():
            counts[folder] = count
            if labels_folder:
                counts[labels_folder] = count
        with open(os.path.join(tmp_dir, MANIFEST), "w") as f:
            json.dump({"format": _FORMAT, "version": _VERSION, "arguments": arguments,
                       "counts": counts}, f, indent=1)
        _move_into_place(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return counts


def _run(jobs, num_workers, progress):
    if num_workers <= 1:
        _report(map(_write_example, jobs), len(jobs), progress)
        return
    # spawn, not fork: the caller (the trainer) may have started TensorFlow's threads.
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
        _report(pool.imap_unordered(_write_example, jobs, chunksize=32), len(jobs), progress)


def _report(results, total, progress):
    """Consumes the results, counting them on a bar (a terminal) or in ten lines (a log)."""
    if not progress:
        collections.deque(results, maxlen=0)
        return
    bar = Progress(total, unit="image", every=max(1, total // 10))
    for _ in results:
        bar.add(1)


def _move_into_place(tmp_dir, out_dir):
    old = f"{out_dir}.old-{os.getpid()}"
    if os.path.isdir(out_dir):
        if os.listdir(out_dir):
            os.rename(out_dir, old)
        else:
            os.rmdir(out_dir)
    parent = os.path.dirname(out_dir)
    if parent:
        os.makedirs(parent, exist_ok=True)
    os.rename(tmp_dir, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def ensure_dataset(out_dir, size=128, num_train=1000, num_test=100, seed=0, progress=True,
                   num_workers=None):
    """Generates the data set unless out_dir already holds a complete one; returns out_dir.

    A complete set made with other arguments is kept (with a warning) rather than silently
    replaced: it may be the one the user made on purpose with launch.make_synthetic.
    """
    _check_arguments(size, num_train, num_test, seed)
    manifest = _read_manifest(out_dir)
    if manifest is not None and _is_complete(out_dir, manifest):
        wanted = dict(size=size, num_train=num_train, num_test=num_test, seed=seed)
        if manifest["arguments"] != wanted or manifest["version"] != _VERSION:
            logging.warning("%s: keeping the synthetic set made with %s (renderer version %s); "
                            "asked for %s (version %s). Delete the folder to regenerate.",
                            out_dir, manifest["arguments"], manifest["version"], wanted,
                            _VERSION)
        return out_dir
    generate_dataset(out_dir, size, num_train, num_test, seed, progress, num_workers)
    return out_dir
