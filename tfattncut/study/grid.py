"""The study's sample grid: the same testA inputs translated by every method, a row each.

Each run's row is saved as STUDY_DIR/samples/NAME.png when the run is scored, and the grid is
drawn from those rows, of every study folder a report merges, so it can be redrawn on a
machine that does not hold the run directories.
"""
import os

import numpy as np
from PIL import Image, ImageDraw

GRID_IMAGES = 4  # testA images a row shows
LABEL_WIDTH = 170  # pixels left of the rows for their names


def row_path(study_dir, name):
    return os.path.join(study_dir, "samples", f"{name}.png")


def write_row(study_dir, name, translated_test_a):
    """The first GRID_IMAGES of the run's translated testA (uint8 [N, H, W, 3]) side by
    side."""
    path = row_path(study_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.concatenate(translated_test_a[:GRID_IMAGES], axis=1)).save(path)
    return path


def _saved_row(study_dirs, name):
    """The row of run `name` from the first of `study_dirs` that holds one, or None."""
    for study_dir in study_dirs:
        if os.path.exists(row_path(study_dir, name)):
            return np.asarray(Image.open(row_path(study_dir, name)).convert("RGB"))
    return None


def draw(study_dirs, names, data, path):
    """The grid at `path`: testA's inputs, the saved row of each of `names` ({row label: run
    name}, looked for in each of `study_dirs`; rows not saved are left out), then real testB
    images, each row named on the left. Returns the path, or None when no row is saved."""
    rows = [(label, _saved_row(study_dirs, name)) for label, name in names.items()]
    rows = [(label, strip) for label, strip in rows if strip is not None]
    if not rows:
        return None
    rows = [("input (testA)", np.concatenate(data.split("test_a").pixels[:GRID_IMAGES], 1)),
            *rows,
            ("real B (testB)", np.concatenate(data.split("test_b").pixels[:GRID_IMAGES], 1))]
    height = rows[0][1].shape[0]
    canvas = Image.new("RGB", (LABEL_WIDTH + max(strip.shape[1] for _, strip in rows),
                               height * len(rows)), "white")
    canvas_draw = ImageDraw.Draw(canvas)
    for row, (name, strip) in enumerate(rows):
        canvas_draw.text((6, row * height + height // 2), name, fill="black", anchor="lm")
        canvas.paste(Image.fromarray(strip), (LABEL_WIDTH, row * height))
    canvas.save(path)
    return path
