"""Tiny data sets and configurations the tests build themselves."""
import os

import numpy as np
from PIL import Image

from tfattncut.config import Config


def write_unaligned_folders(root, count=4, size=64, seed=0):
    """CycleGAN layout (trainA, trainB, testA, testB) of smooth random RGB PNGs; returns root."""
    rng = np.random.default_rng(seed)
    for folder in ("trainA", "trainB", "testA", "testB"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for i in range(count):
            coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
            image = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
            image.save(os.path.join(root, folder, f"{i:03d}.png"))
    return root


def tiny_config(root, **changes):
    """A CUT configuration small enough for a 2-core CPU: 64² images, narrow networks."""
    values = dict(
        dataroot=root, checkpoints_dir=os.path.join(root, "runs"), name="tiny",
        load_size=72, crop_size=64, ngf=4, ndf=4, netG="resnet_6blocks", netF_nc=16,
        num_patches=16, n_epochs=1, n_epochs_decay=1, summary_every=1, image_every=2,
        checkpoint_every=100, jit_compile="false")
    values.update(changes)
    return Config(**values)
