"""Checkpoints that hold Keras 3 networks.

Keras 3 keeps sub-layers held in Python lists (our generator's numbered `layer_list`, the
heads and selectors of F) out of TensorFlow's object graph, so `tf.train.Checkpoint(
generator=model)` would save none of those weights, and restoring it would silently keep
the initial values. Every network is therefore checkpointed as the ordered list of its
weights (the order is fixed by the architecture), under the network's name.

A run's newest checkpoint can be damaged (a full disk, a copy cut short): `newest_intact`
falls back to the newest one that reads back whole, for resuming, translating and exporting
alike.
"""
import os
import shutil

import keras
import tensorflow as tf
from absl import logging


def _weights_of(network):
    holder = tf.Module(name=network.name)
    holder.weights = list(network.weights)
    return holder


def make_checkpoint(**objects):
    """tf.train.Checkpoint of `objects`; Keras layers/models are stored by their weights."""
    return tf.train.Checkpoint(**{
        name: _weights_of(obj) if isinstance(obj, keras.layers.Layer) else obj
        for name, obj in objects.items()})


# Where `newest_intact` copies the files of a damaged checkpoint, inside its folder.
DAMAGED_FOLDER = "damaged"


def damage(prefix):
    """Why the checkpoint PREFIX cannot be restored, or None when it can.

    Every tensor is read back (TensorFlow checks each one's checksum), as a restore would: a
    truncated or missing index fails on opening, a truncated data file only on reading the
    tensors past its end ("Read less bytes than requested", raised as an IndexError).
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_dtype_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, IndexError) as error:
        return getattr(error, "message", None) or str(error)
    return None


def newest_intact(directory, keep_damaged=False):
    """The newest checkpoint in `directory` that can be restored (see `_newest_first`), or
    None when there is none; a warning names each newer damaged one and why. Damaged files
    are never deleted.

    keep_damaged: also copy each damaged checkpoint's files into DIRECTORY/damaged/ first. A
      run that resumes from an older checkpoint will save the same step numbers again and
      rotate old ones out, which would overwrite or delete the damaged originals.
    Raises ValueError naming each checkpoint when every one is damaged: starting over
    silently would lose the run.
    """
    damaged = []
    for prefix in _newest_first(directory):
        why = damage(prefix)
        if why is None:
            if damaged:
                logging.warning("Using %s, the newest intact checkpoint of %s", prefix,
                                directory)
            return prefix
        damaged.append(f"{prefix} ({why})")
        logging.warning("Checkpoint %s is damaged and left as it is: %s", prefix, why)
        if keep_damaged:
            _copy_aside(prefix)
    if damaged:
        raise ValueError(f"Every checkpoint in {directory} is damaged: {'; '.join(damaged)}")
    return None


def _newest_first(directory):
    """The checkpoint prefixes of `directory`, highest number (PREFIX-N) first: those its
    `checkpoint` file lists, and any other with an index file (a CheckpointManager leaves
    preserved checkpoints out of that list, and a plain Checkpoint.save lists only its own)."""
    state = tf.train.get_checkpoint_state(directory)
    listed = list(state.all_model_checkpoint_paths) if state else []
    on_disk = [path[:-len(".index")]
               for path in tf.io.gfile.glob(os.path.join(directory, "*.index"))]
    prefixes = {}
    for prefix in on_disk + listed:  # the listed spelling of a path wins
        prefixes[os.path.abspath(prefix)] = prefix

    def number(prefix):
        tail = prefix.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    return sorted(prefixes.values(), key=number, reverse=True)


def _copy_aside(prefix):
    folder = os.path.join(os.path.dirname(prefix), DAMAGED_FOLDER)
    os.makedirs(folder, exist_ok=True)
    for path in tf.io.gfile.glob(prefix + ".*"):
        shutil.copy2(path, folder)
    logging.warning("Copied the files of %s into %s", prefix, folder)
