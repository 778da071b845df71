"""Image folders the data tests write: flat and smooth test images, and one file of every
readable format (plus broken ones) with Pillow's decoding as the oracle."""
import collections
import io
import os

import numpy as np
from PIL import Image

Formats = collections.namedtuple("Formats", "root good bad oracle")


def smooth(height, width, phase=0.0):
    """uint8 [H, W, 3] with smooth colour waves (resampling oracles agree closely on it)."""
    y, x = np.mgrid[0:height, 0:width]
    waves = [128 + 100 * np.sin(x / 4 + phase + k) * np.cos(y / 5 - phase) for k in range(3)]
    return np.stack(waves, -1).clip(0, 255).astype(np.uint8)


def flat(value, height, width):
    """uint8 [H, W, 3] of one grey level: survives any crop, flip or resize, so it names the
    file an output came from."""
    return np.full([height, width, 3], value, np.uint8)


def write(folder, images):
    """Writes {file name: PIL image or bytes} into `folder`."""
    os.makedirs(folder, exist_ok=True)
    for name, image in images.items():
        path = os.path.join(folder, name)
        if isinstance(image, bytes):
            with open(path, "wb") as f:
                f.write(image)
        else:
            image.save(path)


def grey_levels(batch):
    """[B, H, W, 3] in [-1, 1] -> the grey level (0..255) of each flat image, [B]."""
    return np.round((batch[:, 0, 0, 0] + 1) * 127.5).astype(int)


def numpy_batches(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


def write_formats(root):
    """root/trainA: one 12 x 16 file of each readable format (`good`, by name) and four broken
    ones (`bad`); root/trainB: one PNG. `oracle`: the expected pixels where Pillow's
    convert('RGB') is not the oracle."""
    rgb = smooth(12, 16)
    deep = (np.arange(12 * 16).reshape(12, 16) * 331 % 65536).astype(np.uint16)
    frames = [Image.fromarray(rgb).quantize(32), Image.fromarray(255 - rgb).quantize(32)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    good = {
        "gray.png": Image.fromarray(rgb[..., 0]),
        "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
        "palette.png": Image.fromarray(rgb).quantize(16),
        "deep.png": Image.fromarray(deep),
        "animated.gif": gif.getvalue(),
        "plain.bmp": Image.fromarray(rgb),
        "palette.bmp": Image.fromarray(rgb).quantize(16),
        "photo.jpg": Image.fromarray(rgb),
        "photo2.JPEG": Image.fromarray(smooth(12, 16, 1.0)).convert("L"),
        # TF cannot decode these two formats; Pillow (the reference's loader) does.
        "plain.tif": Image.fromarray(rgb),
        "rgba.TIFF": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
        "gray.tiff": Image.fromarray(rgb[..., 1]),
        "plain.ppm": Image.fromarray(rgb),
        "gray.PPM": Image.fromarray(rgb[..., 2]),  # Pillow writes a binary PGM (P5)
    }
    tiff = io.BytesIO()
    Image.fromarray(rgb).save(tiff, "TIFF")
    bad = {"broken.png": png.getvalue()[:60], "notes.jpg": b"not an image at all",
           "broken.tif": tiff.getvalue()[:40], "broken.ppm": b"P6\n16 12\n255\n123"}
    write(os.path.join(root, "trainA"), {**good, **bad})
    write(os.path.join(root, "trainB"), {"b.png": Image.fromarray(rgb)})
    # Pillow clips 16-bit values to 255 in convert('RGB'); the oracle is the top byte.
    oracle = {"deep.png": np.repeat((deep >> 8).astype(np.uint8)[..., None], 3, -1)}
    return Formats(root, good, bad, oracle)
