"""The study's sample grid: the same testA inputs translated by every method, a row each.

Each run's row is saved as STUDY_DIR/samples/NAME.png when the run is scored, and the grid is
drawn from those rows, so it can be redrawn (e.g. after merging studies) on a machine that
does not hold the run directories.
"""
import os

import numpy as np
from PIL import Image, ImageDraw

GRID_IMAGES = 4


def row_path(study_dir, name):
    return os.path.join(study_dir, "samples", f"{name}.png")


def write_row(study_dir, name, translated_test_a, count=GRID_IMAGES):
    """The first `count` of the run's translated testA (uint8 [N, H, W, 3]) side by side."""
    path = row_path(study_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.concatenate(translated_test_a[:count], axis=1)).save(path)
    return path


def draw(study_dir, names, data, path, count=GRID_IMAGES, label_width=170):
    """The grid at `path`: testA's inputs, the saved row of each of `names` ({row label: run
    name}; rows not saved are left out), then real testB images, each row named on the
    left. Returns the path, or None when no row is saved."""
    rows = [(label, np.asarray(Image.open(row_path(study_dir, name)).convert("RGB")))
            for label, name in names.items() if os.path.exists(row_path(study_dir, name))]
    if not rows:
        return None
    rows = [("input (testA)", np.concatenate(data.split("test_a").pixels[:count], axis=1)),
            *rows,
            ("real B (testB)", np.concatenate(data.split("test_b").pixels[:count], axis=1))]
    height = rows[0][1].shape[0]
    canvas = Image.new("RGB", (label_width + max(strip.shape[1] for _, strip in rows),
                               height * len(rows)), "white")
    canvas_draw = ImageDraw.Draw(canvas)
    for row, (name, strip) in enumerate(rows):
        canvas_draw.text((6, row * height + height // 2), name, fill="black", anchor="lm")
        canvas.paste(Image.fromarray(strip), (label_width, row * height))
    canvas.save(path)
    return path
