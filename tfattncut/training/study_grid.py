"""The study's sample grid: the same testA inputs translated by every method, a row each.

Each run's row is saved as STUDY_DIR/samples/NAME_seedS.png when the run is scored, and the
grid is drawn from those rows, so it can be redrawn (e.g. after merging studies) on a machine
that does not hold the run directories.
"""
import os

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from tfattncut import inference, pixels
from tfattncut.data.image_files import list_images, load_image
from tfattncut.evaluation.study_report import run_name


def row_path(study_dir, name):
    return os.path.join(study_dir, "samples", f"{name}.png")


def write_row(study_dir, name, translator, dataroot, count):
    """The run's translations of the first `count` testA images, side by side, as one PNG."""
    images = inference.translate(translator, _inputs(dataroot, "testA", count))
    path = row_path(study_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.concatenate(pixels.to_uint8(images).numpy(), axis=1)).save(path)
    return path


def method_rows(settings, variants):
    """[(variant, [H, W * grid_images, 3] uint8)] of each variant's lowest seed with a saved
    row; a run scored before rows were saved gets its row from its checkpoint where that is
    on this machine; variants with neither are left out."""
    rows = []
    for variant in variants:
        for seed in sorted(settings.seeds):
            name = run_name(variant, seed)
            path = row_path(settings.study_dir, name)
            run_dir = os.path.join(settings.runs_dir, name)
            if not os.path.exists(path) and tf.train.latest_checkpoint(
                    os.path.join(run_dir, "checkpoints")):
                translator, config = inference.load_translator(run_dir)
                write_row(settings.study_dir, name, translator, config.dataroot,
                          settings.grid_images)
            if os.path.exists(path):
                rows.append((variant, np.asarray(Image.open(path).convert("RGB"))))
                break
    return rows


def draw(rows, dataroot, count, path, label_width=170):
    """The grid at `path`: the testA inputs, `rows`, then real testB images, each row named on
    the left."""
    rows = [("input (testA)", _tiles(dataroot, "testA", count)), *rows,
            ("real B (testB)", _tiles(dataroot, "testB", count))]
    height = rows[0][1].shape[0]
    canvas = Image.new("RGB", (label_width + max(strip.shape[1] for _, strip in rows),
                               height * len(rows)), "white")
    canvas_draw = ImageDraw.Draw(canvas)
    for row, (name, strip) in enumerate(rows):
        canvas_draw.text((6, row * height + height // 2), name, fill="black", anchor="lm")
        canvas.paste(Image.fromarray(strip), (label_width, row * height))
    canvas.save(path)
    return path


def _inputs(dataroot, folder, count):
    return tf.stack([load_image(p) for p in list_images(os.path.join(dataroot, folder))[:count]])


def _tiles(dataroot, folder, count):
    return np.concatenate(pixels.to_uint8(_inputs(dataroot, folder, count)).numpy(), axis=1)
