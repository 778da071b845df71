"""The geometry of the synthetic street scenes (docs/design/synthetic.md#scene-grammar),
shared by both styles.

A scene is a few axis-aligned boxes, circles and ground strips in a 3-D street frame seen by a
pinhole camera (x right, y up, z forward, in metres), drawn far to near into a map of *keys*;
a key is a (material, tint, face) triple from which both the label id (`label_map`) and each
style's colour (tfattncut.data.street_styles) follow, so labels and pixels can never disagree.
"""
import collections

import numpy as np
from PIL import Image, ImageDraw

from tfattncut.data.labels import (BUILDING, CAR, POLE, ROAD, SIDEWALK, SKY, TRAFFIC_LIGHT,
                                   VEGETATION)

# The label ids the scenes use.
SCENE_LABEL_IDS = (ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_LIGHT, VEGETATION, SKY, CAR)

Material = collections.namedtuple("Material", "label a_color b_color")
_RED, _AMBER, _GREEN = 0, 1, 2     # lamp tints
_TAIL, _HEAD = 0, 1                # car light tints
# Tinted materials take their colour from a palette indexed by the key's tint, so that a
# red car in an A scene is a dark-red car when the same scene is rendered in the B style.
MATERIALS = {
    "sky": Material(SKY, (90, 170, 255), None),  # B: a graded sky
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
GROUND = ("road", "lane", "sidewalk", "curb")


def material_color(table, tint):
    return table[tint] if isinstance(table[0], (tuple, list)) else table


class Scene:
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


def draw_scene(rng, size):
    """Draws one random street scene; returns the Scene (key map, keys, shadows)."""
    scene = Scene(rng, size)
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


def key_table(scene, field):
    """[field(material, tint, face) for each of the scene's keys], in key order: a lookup
    table to index with the key map."""
    return [field(*spec) for spec in sorted(scene.keys, key=scene.keys.get)]


def label_map(scene):
    """uint8 [size, size] Cityscapes label ids of the scene's key map."""
    table = np.array(key_table(scene, lambda material, tint, face: MATERIALS[material].label),
                     np.uint8)
    return table[np.asarray(scene.image)]
