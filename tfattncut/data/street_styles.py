"""The two looks of the synthetic street scenes (docs/design/synthetic.md#styles): domain A,
the "simulator" (flat saturated colours, hard edges), and domain B, the "camera" (varied
palette, textures, shading, shadows, blur, grading, noise, JPEG). Each colours a
street_scenes.Scene's key map.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tfattncut.data.street_scenes import GROUND, MATERIALS, key_table, material_color

# A's flat shading per face: a fixed light from the upper left.
_A_FACE_SHADE = np.array([1.0, 0.82, 0.68, 1.1], np.float32)


def style_a(scene):
    """Flat saturated palette colours, hard edges, no noise."""
    def color(material, tint, face):
        rgb = np.array(material_color(MATERIALS[material].a_color, tint), np.float32)
        return np.clip(rgb * _A_FACE_SHADE[face], 0, 255)
    lut = np.array(key_table(scene, color)).astype(np.uint8)
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


_LN2_HI, _LN2_LO = 0.693147180369123816490, 1.90821492927058770002e-10  # fdlibm's split
_LN2 = _LN2_HI + _LN2_LO


def _power(x, exponent):
    """float32 x ** float32(exponent) for x in [0, 1], the same bits on every CPU.

    NumPy's own float32 power is Intel's SVML on AVX-512 machines and glibc's powf elsewhere,
    which round some values otherwise (docs/design/synthetic.md#determinism). This one is
    exp(exponent * log(x)) in float64 from frexp/ldexp, rint and + - * / alone, which IEEE
    arithmetic rounds the same everywhere: log by the atanh series of the mantissa, exp by
    range reduction and Taylor terms, each to about 1e-16, then rounded to float32."""
    x = np.asarray(x, np.float64)
    mantissa, exponent2 = np.frexp(x)               # x = mantissa * 2**exponent2, [0.5, 1)
    low = mantissa < np.sqrt(0.5)
    mantissa = np.where(low, 2 * mantissa, mantissa)
    exponent2 = exponent2 - low                      # mantissa now in [0.707, 1.414)
    s = (mantissa - 1) / (mantissa + 1)              # |s| < 0.172
    s2 = s * s
    series = np.zeros_like(s)
    for k in range(12, -1, -1):                      # s2**13 / 27 < 1e-21
        series = series * s2 + 1.0 / (2 * k + 1)
    y = np.float64(np.float32(exponent)) * (2 * s * series + exponent2 * _LN2)
    k = np.rint(y / _LN2)
    r = (y - k * _LN2_HI) - k * _LN2_LO              # |r| <= 0.347
    term = total = np.ones_like(r)
    for n in range(1, 18):                           # 0.347**18 / 18! < 1e-23
        term = term * r / n
        total = total + term
    power = np.ldexp(total, np.where(x > 0, k, 0).astype(np.int32))
    return np.where(x > 0, power, 0.0).astype(np.float32)


def _channel_sum(x):
    """x[..., 0] + x[..., 1] + x[..., 2]: several times faster than x.sum(-1) on small images,
    and unlike matmul it starts no BLAS threads that compete with the worker processes."""
    return x[..., 0] + x[..., 1] + x[..., 2]


def style_b(scene, rng):
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
        table = MATERIALS[material].b_color
        base = np.ones(3) if table is None else np.array(material_color(table, tint))
        colors.append(base * jitter[material, tint] * face_shade[face])
        textures.append(_B_TEXTURE.get(material, _B_TEXTURE_DEFAULT))
        bricks.append(material == "wall" and brick_tints[tint])
    sky = np.array([m == "sky" for m, _, _ in specs])[keys]
    ground = np.array([m in GROUND for m, _, _ in specs])[keys]
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
    image = _power(np.clip(gray + rng.uniform(0.6, 0.9) * (image - gray), 0, 1),
                   rng.uniform(0.9, 1.1))
    radius2 = ((rows - size / 2) ** 2 + (cols - size / 2) ** 2) / (size ** 2 / 2)
    image *= (1 - rng.uniform(0.15, 0.4) * radius2).astype(np.float32)[..., None]
    image += rng.uniform(0.008, 0.025) * rng.standard_normal(image.shape, np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), int(rng.integers(75, 91))
