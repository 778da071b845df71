"""Tiny data sets and configurations the tests build themselves."""
import dataclasses
import os

import numpy as np
from PIL import Image

from tfattncut.config import Config


def write_unaligned_folders(root, count=4, size=64, seed=0, labels=False):
    """CycleGAN layout (trainA, trainB, testA, testB) of smooth random RGB PNGs; returns root.

    labels: also trainA_labels, testA_labels: a label map per A image (same name), 4 x 4
    blocks of Cityscapes label ids (id 0, "unlabeled", among them), drawn apart so that the
    images do not depend on it.
    """
    rng, label_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    for folder in ("trainA", "trainB", "testA", "testB"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for i in range(count):
            coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
            image = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
            image.save(os.path.join(root, folder, f"{i:03d}.png"))
            if labels and folder.endswith("A"):
                ids = label_rng.choice([0, 7, 8, 11, 21, 23, 26], size=(4, 4)).astype(np.uint8)
                write_png(os.path.join(root, folder + "_labels"), f"{i:03d}.png",
                          np.kron(ids, np.ones([size // 4, size // 4], np.uint8)))
    return root


def write_png(folder, name, pixels):
    """Saves uint8 [H, W, 3] (or [H, W]: one channel) pixels as FOLDER/NAME (created);
    returns the path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    Image.fromarray(pixels).save(path)
    return path


def tiny_config(root, **changes):
    """A CUT configuration small enough for a 2-core CPU: 64² images, narrow networks."""
    values = dict(
        dataroot=root, checkpoints_dir=os.path.join(root, "runs"), name="tiny",
        load_size=72, crop_size=64, ngf=4, ndf=4, netG="resnet_6blocks", netF_nc=16,
        num_patches=16, n_epochs=1, n_epochs_decay=1, summary_every=1, image_every=2,
        checkpoint_every=100, jit_compile="false")
    values.update(changes)
    return Config(**values)


# tiny_config's changes for XLA-compiled steps on two replicas, as small as XLA's compile
# time on a 2-core CI machine allows (it dominates those tests): 32² images, a one-layer D,
# no anti-aliasing, a global batch of 2. Gain 1 keeps the projected NCE features well above
# rounding noise (see tests/methods/test_cut.py). NCE layers 4 and 8, not 0: with the pixel
# layer (nce_layers=(0, 4), the flip), one image's second-step gradient jumped by 4 % under
# input noise of 1e-6 (graph mode against graph mode; XLA's reordering did the same), which
# no tolerance could tell from a bug.
XLA_SMALL = dict(crop_size=32, load_size=32, nce_layers=(4, 8), n_layers_D=1,
                 no_antialias=True, no_antialias_up=True, init_gain=1.0, batch_size=2)


def as_flags(config):
    """The command-line flags that reproduce `config` (for launching real subprocesses)."""
    flags = []
    for name, value in dataclasses.asdict(config).items():
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = str(value).lower()
        flags.append(f"--{name}={value}")
    return flags


def write_tiny_run(config):
    """A run directory as launch.train leaves it (config.json + a generator checkpoint),
    with an untrained generator; returns the generator."""
    import tensorflow as tf

    from tfattncut.checkpoints import make_checkpoint
    from tfattncut.models.generator import build_generator

    generator = build_generator(config)
    generator(tf.zeros([1, 64, 64, 3]))
    make_checkpoint(generator=generator).save(
        os.path.join(config.run_dir, "checkpoints", "ckpt"))
    with open(os.path.join(config.run_dir, "config.json"), "w") as f:
        f.write(config.to_json())
    return generator
