"""Hand-made label maps and a segmenter with known predictions, shared by the segmenter and
launch.evaluate tests.

The segmenter maps pure red to road, green to vegetation and blue to sky (train ids 0, 8,
10). Two 4x6 images; image 0, colours and Cityscapes label ids (0 = unlabeled -> ignored):

    B B B B B B    sky sky sky sky veg  0
    G G B B G G    veg veg sky sky veg  veg
    R R R R R R    road x5              car
    R R R R G G    road x6

image 1: all red, all road. Counted pixels (label -> prediction): road->road 5 + 4 + 24 = 33,
road->veg 2, veg->veg 4, veg->sky 1, sky->sky 6, car->road 1; 47 counted, 1 ignored.
"""
import os

import keras
import numpy as np
from PIL import Image

from tfattncut.data.labels import CAR, ROAD, SKY, TRAIN_CLASSES, VEGETATION
from tfattncut.evaluation import segmenter

_COLOURS = {"R": (255, 0, 0), "G": (0, 255, 0), "B": (0, 0, 255)}
_ROAD, _VEG, _SKY, _CAR = ROAD, VEGETATION, SKY, CAR
_IMAGES = {
    "scene0": (["BBBBBB", "GGBBGG", "RRRRRR", "RRRRGG"],
               [[_SKY] * 4 + [_VEG, 0], [_VEG, _VEG, _SKY, _SKY, _VEG, _VEG],
                [_ROAD] * 5 + [_CAR], [_ROAD] * 6]),
    "scene1": (["RRRRRR"] * 4, [[_ROAD] * 6] * 4),
}
# Hand-computed from the counts above (IoU = TP / (TP + FP + FN), accuracy = TP / row).
EXPECTED_IOU = {"road": 33 / 36, "vegetation": 4 / 7, "sky": 6 / 7, "car": 0.0}
EXPECTED_PIXEL_ACCURACY = 43 / 47
EXPECTED_CLASS_ACCURACY = np.mean([33 / 35, 4 / 5, 6 / 6, 0 / 1])


def write_scenes(root):
    """Writes root/images/*.png and root/labels/*.png; returns (image_dir, label_dir)."""
    image_dir, label_dir = os.path.join(root, "images"), os.path.join(root, "labels")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    for stem, (rows, labels) in _IMAGES.items():
        pixels = np.array([[_COLOURS[c] for c in row] for row in rows], np.uint8)
        Image.fromarray(pixels).save(os.path.join(image_dir, stem + ".png"))
        Image.fromarray(np.array(labels, np.uint8)).save(os.path.join(label_dir, stem + ".png"))
    return image_dir, label_dir


def colour_segmenter():
    """A 1x1 conv whose logits pick road / vegetation / sky from the R / G / B channel."""
    inputs = keras.Input([None, None, 3])
    conv = keras.layers.Conv2D(len(TRAIN_CLASSES), 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros([1, 1, 3, len(TRAIN_CLASSES)], np.float32)
    for channel, name in enumerate(("road", "vegetation", "sky")):
        kernel[0, 0, channel, TRAIN_CLASSES.index(name)] = 1.0
    conv.kernel.assign(kernel)
    return model


def export_colour_segmenter(root):
    """Writes `colour_segmenter` as the SavedModel root/segmenter; returns its path."""
    return segmenter.export_segmenter(colour_segmenter(), os.path.join(root, "segmenter"))
