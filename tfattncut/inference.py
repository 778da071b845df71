"""Translation modules, local tensors: a generator in this process (and loading one).

Translates images of any size with a trained generator, and loads one from a run.

Size rule: the generator halves the resolution twice, so an image whose height or width is
not a multiple of 4 is reflect-padded at the bottom and right up to the next multiple of 4,
translated, and cropped back to its own size. Serving signatures use the same function.
"""
import os

import tensorflow as tf

from tfattncut.checkpoints import damage, make_checkpoint, newest_intact
from tfattncut.config import Config
from tfattncut.methods import method_class

MULTIPLE = 4
# The generator halves the resolution twice and its residual blocks reflect-pad by 1, which
# needs maps of at least 2 pixels: sides of 5..8 are padded to 8, while 4 would shrink to 1.
MIN_SIDE = 5


def translate(generator, images):
    """images [B, H, W, 3] float32 in [-1, 1], H, W >= MIN_SIDE -> [B, H, W, 3] in [-1, 1]."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    pad_h = (MULTIPLE - height % MULTIPLE) % MULTIPLE
    pad_w = (MULTIPLE - width % MULTIPLE) % MULTIPLE
    padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    return generator(padded)[:, :height, :width, :]


def find_run(checkpoint):
    """(run directory, checkpoint prefix) for a run directory, a folder of checkpoints in it
    (checkpoints/, or best_fid/ of evaluation while training), or one checkpoint prefix
    (runs/NAME/checkpoints/ckpt-N).

    A folder gives its newest intact checkpoint (a warning names any newer damaged one); a
    prefix names one checkpoint, which is an error if it is damaged.
    """
    path = os.path.normpath(checkpoint)
    if os.path.isdir(path):
        run_folder = os.path.join(path, "checkpoints")
        folder = run_folder if os.path.isdir(run_folder) else path
        try:
            prefix = newest_intact(folder)
        except ValueError as error:
            raise ValueError(f"--checkpoint={checkpoint}: {error}") from None
        if prefix is None:
            raise FileNotFoundError(f"--checkpoint={checkpoint}: no checkpoint in {folder}")
    else:
        prefix = path
        if not tf.io.gfile.exists(prefix + ".index"):
            raise FileNotFoundError(f"--checkpoint={checkpoint}: neither a run directory nor a "
                                    f"checkpoint prefix ({prefix}.index does not exist)")
        why = damage(prefix)
        if why:
            raise ValueError(f"--checkpoint={checkpoint}: the checkpoint is damaged ({why}); "
                             f"pass its run directory to use the newest intact one")
    return os.path.dirname(os.path.dirname(prefix)), prefix


def load_translator(checkpoint, direction="AtoB"):
    """(translator, config) of a training run: the config comes from the run's config.json,
    and only the weights the translator needs are read from the checkpoint.

    translator: a Keras callable, [B, H, W, 3] in [-1, 1] (H, W multiples of 4) -> same;
    `direction` picks the generator of two-way methods (AtoB = the trained direction).
    """
    run_dir, prefix = find_run(checkpoint)
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"--checkpoint={checkpoint}: {config_path} is missing; it is "
                                "written by launch.train and describes the networks")
    config = Config.from_json_file(config_path)
    translator, trackables = method_class(config.model).build_translator(config, direction)
    try:
        make_checkpoint(**trackables).restore(prefix).expect_partial() \
            .assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as error:
        raise ValueError(f"--checkpoint={checkpoint}: {prefix} does not fit the networks that "
                         f"{config_path} describes ({str(error).splitlines()[0]})") from None
    return translator, config
