"""The Cityscapes label table (cityscapesscripts' labels.py): label ids as the label maps on
disk hold them, the 19 train ids a segmenter predicts, the mapping between them, and the reader
of label map files. Shared by the synthetic scenes (which write label ids), the training data
(which serves label maps as train ids) and evaluation (which scores train ids), apart from the
renderer.
"""
import collections

import numpy as np
from PIL import Image

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
# The labels of the 19 training classes, in train-id order, and their names.
TRAIN_LABELS = tuple(sorted((l for l in CITYSCAPES_LABELS if l.train_id != IGNORE_TRAIN_ID),
                            key=lambda l: l.train_id))
TRAIN_CLASSES = tuple(label.name for label in TRAIN_LABELS)
# A 256-entry lookup table (label id -> train id), e.g. for tf.gather in input pipelines.
TRAIN_ID_LUT = np.full(256, IGNORE_TRAIN_ID, np.uint8)
for _id, _train_id in CITYSCAPES_TRAIN_IDS.items():
    TRAIN_ID_LUT[_id] = _train_id

ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_LIGHT, VEGETATION, SKY, CAR = 7, 8, 11, 17, 19, 21, 23, 26


def to_train_ids(label_ids):
    """Maps Cityscapes label ids (any integer array) to uint8 train ids; unknown ids -> 255."""
    label_ids = np.asarray(label_ids)
    known = (label_ids >= 0) & (label_ids < TRAIN_ID_LUT.size)
    return np.where(known, TRAIN_ID_LUT[np.where(known, label_ids, 0)], IGNORE_TRAIN_ID
                    ).astype(np.uint8)


def read_train_ids(path):
    """A label map file of Cityscapes label ids -> uint8 [H, W] train ids (255: ignore)."""
    with Image.open(path) as image:
        if image.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(
                f"Label map {path} has mode {image.mode}: expected a single-channel map of "
                f"Cityscapes label ids (as the synthetic set writes), not a colour-coded one.")
        return to_train_ids(np.asarray(image))
