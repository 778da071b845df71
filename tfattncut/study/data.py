"""The study's data set: the bundled street scenes rendered at the study's own size, held in
memory as uint8 arrays, and the hash that says two machines read the same files.

The study renders exactly the images it uses (docs/design/study.md, "Data"): 200 training
images per domain, so no run depends on which files a `--max_dataset_size` cap keeps (the
reference's cap keeps the first files in directory order, which differs from one file system
to the next), and 500 test images per domain with labels, so that each score averages over
enough images. Every image is a pure function of its index (tfattncut.data.synthetic), so
these are the first images of any larger rendering with the same seed.
"""
import dataclasses
import functools
import hashlib
import os

import numpy as np

from tfattncut.data import synthetic
from tfattncut.data.image_files import list_images
from tfattncut.evaluation import segmenter

# name -> (image folder, label folder): the parts of the data set a study reads.
SPLITS = {
    "train_a": ("trainA", "trainA_labels"),
    "train_b": ("trainB", "trainB_labels"),
    "test_a": ("testA", "testA_labels"),
    "test_b": ("testB", "testB_labels"),
    # testA's scenes in the B style: the ideal translation of test_a, with test_a's labels.
    "test_a_as_b": ("testA_as_B", "testA_labels"),
}


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """How the study's data set is rendered (launch.make_synthetic's arguments)."""
    dataroot: str = "data/synth_street_study"
    size: int = 128
    num_train: int = 200
    num_test: int = 500
    seed: int = 0

    def render(self):
        """Renders the set unless `dataroot` holds it; returns the dataroot."""
        return synthetic.ensure_dataset(self.dataroot, self.size, self.num_train,
                                        self.num_test, self.seed)


@dataclasses.dataclass(frozen=True)
class Split:
    """One split in memory: uint8 [N, H, W, 3] pixels and uint8 [N, H, W] train ids (255:
    ignore)."""
    pixels: np.ndarray
    labels: np.ndarray


class StudyData:
    """The splits of SPLITS under `dataroot`, each loaded on first use."""

    def __init__(self, dataroot):
        self.dataroot = dataroot

    @functools.cache
    def split(self, name):
        folder, label_folder = SPLITS[name]
        paths = list_images(os.path.join(self.dataroot, folder))
        return Split(*segmenter.load_pairs(paths, os.path.join(self.dataroot, label_folder),
                                           "--dataroot"))

    @functools.cached_property
    def hash(self):
        """data_hash of this data set."""
        return data_hash(self.dataroot)


def data_hash(dataroot):
    """The first 16 hex digits of the SHA-256 of every file the study reads (SPLITS' folders:
    relative path and bytes, in sorted order): equal on two machines exactly when they read
    the same images and label maps."""
    digest = hashlib.sha256()
    folders = sorted({folder for pair in SPLITS.values() for folder in pair})
    for folder in folders:
        root = os.path.join(dataroot, folder)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{root} does not exist: the study's data set needs "
                                    f"{', '.join(folders)} (launch.study renders them)")
        for name in sorted(os.listdir(root)):
            digest.update(f"{folder}/{name}\0".encode())
            with open(os.path.join(root, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]
