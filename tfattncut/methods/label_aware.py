"""Translation told what must not change: the label-aware options of the one-generator method
(CUT, FastCUT and every selector), for source images that come with label maps (the
simulator's, `{phase}A_labels/`; data.unaligned serves them as the "a_labels" stream).

Semantic consistency (Hoffman et al., CyCADA, ICML 2018), --lambda_sem: a segmenter S_A,
trained on the run's own training views of A with their labels and then frozen, segments
each translation, and the generator adds lambda_sem · CE(S_A(G(x_A)), y_A)
(losses.pixel_cross_entropy). S_A is the downstream experiment's network
(models.segmenter), trained by `train_segmenter_a` at the start of the run and kept in
RUN/segmenter_A.weights.h5, which a resumed run reloads instead of training it again; or it
is any SavedModel given with --sem_segmenter. It never scores anything: the evaluation's
segmenters are trained apart, on B (label preservation) or from scratch on translated A
(downstream).

Adaptive S_A, --sem_adapt: the frozen S_A reads A's look only (measured in the study: mIoU
0.58 on testA, 0.09 on the same scenes in B's look), so the CE term pulls G back towards A's
colours, against the adversarial loss. With --sem_adapt, S_A starts from the same training
and keeps learning in D's update: CE(S_A(G(x_A)), y_A) on the translations, without gradient
to G, so it reads what G makes as G moves towards B; G's term then asks only that the labels
stay readable (docs/design/losses.md#semantic-consistency).

Label-aware PatchNCE negatives, --label_nce: a patch is labelled with the majority label of
its cell at its layer's resolution (`cell_labels`), and a key of the query's class is no
negative (losses.patch_nce_loss), so the loss stops pushing apart patches that should look
alike. Only the A side's NCE has labels; the identity term on B is plain PatchNCE.
"""
import dataclasses
import os

import tensorflow as tf
from absl import logging

from tfattncut.data.labels import IGNORE_TRAIN_ID
from tfattncut.methods.precision import precision_policy
from tfattncut.models import segmenter as segmenter_lib
from tfattncut.models.segmenter import NUM_CLASSES, build_segmenter, fit_segmenter, \
    load_segmenter
from tfattncut.options import AT_LEAST_ONE, NON_NEGATIVE, option

# Where a run keeps the S_A it trained (a Keras weights file, which needs this suffix).
SEGMENTER_FILE = "segmenter_A.weights.h5"
# --sem_adapt's Adam β1 for S_A: the one S_A first trained with (Keras' default), not --beta1.
SEGMENTER_BETA_1 = 0.9


@dataclasses.dataclass(frozen=True)
class LabelAwareOptions:
    """The label-aware options (see the module docstring); both need the label maps of the
    training source images, and both combine with every --selector."""
    lambda_sem: float = option(
        0.0, "Weight of semantic consistency (CyCADA), CE(S_A(G(x_A)), y_A) with a frozen "
        "segmenter S_A of the source domain; needs label maps of the training source images "
        "({phase}A_labels/, single-channel Cityscapes label ids). 0: off.",
        bounds=NON_NEGATIVE)
    sem_segmenter: str = option(
        "", "S_A of --lambda_sem: a SavedModel from float32 images [B, H, W, 3] in [-1, 1] to "
        "logits [B, H, W, 19] (Cityscapes train ids). Empty: S_A is trained on the run's "
        "training views of the source images with their labels when the run starts, and kept "
        f"in RUN/{SEGMENTER_FILE} (a resumed run reloads it).")
    sem_epochs: int = option(
        5, "Epochs of the training views S_A trains on when --sem_segmenter is empty.",
        bounds=AT_LEAST_ONE)
    sem_adapt: bool = option(
        False, "S_A keeps learning on the translations, with the source labels, in D's "
        "update (logged as S_fake), so that it reads G's current look instead of A's alone; "
        "needs the run's own S_A (--sem_segmenter empty). False: frozen, as in CyCADA.")
    label_nce: bool = option(
        False, "Label-aware PatchNCE: a patch of the anchor's class (the majority label of "
        "its cell at the layer's resolution) is not a negative. Needs the label maps, as "
        "--lambda_sem does.")


def uses_labels(config):
    """Whether `config` turns on a label-aware option, which needs the "a_labels" stream."""
    return config.lambda_sem > 0 or config.label_nce


def check_options(config):
    """Raises ValueError naming the flags of label-aware options that cannot work."""
    if config.sem_adapt and not config.lambda_sem:
        raise ValueError("--sem_adapt trains the S_A of semantic consistency; pass "
                         "--lambda_sem > 0 too, or leave it out")
    if config.sem_adapt and config.sem_segmenter:
        raise ValueError(f"--sem_adapt with --sem_segmenter={config.sem_segmenter}: a "
                         "SavedModel cannot be trained on; leave --sem_segmenter empty (the run "
                         "trains its own S_A) or drop --sem_adapt")
    if config.sem_segmenter and not config.lambda_sem:
        raise ValueError(f"--sem_segmenter={config.sem_segmenter} is only used by semantic "
                         "consistency; pass --lambda_sem > 0 too, or leave it out")
    if config.lambda_sem and not config.sem_segmenter and config.strategy == "multi_worker":
        raise ValueError("--lambda_sem > 0 with --strategy=multi_worker: every worker would "
                         "train its own S_A; train one in a single-worker run (its "
                         f"RUN/{SEGMENTER_FILE}) or export one, and pass it as --sem_segmenter")


def build_segmenter_a(config):
    """S_A, called images [B, H, W, 3] float32 -> logits [B, H, W, 19]: --sem_segmenter's
    SavedModel, else the untrained network that `prepare_segmenter` fills. Float32 under any
    --mixed_precision (it computes as it was trained); trainable with --sem_adapt only."""
    if config.sem_segmenter:
        return load_segmenter(config.sem_segmenter, "--sem_segmenter")
    segmenter = _new_segmenter(config)
    segmenter.trainable = config.sem_adapt
    return segmenter


def _new_segmenter(config):
    """S_A's network with its initial weights (seed --seed), in float32."""
    with precision_policy("none"):
        return build_segmenter(NUM_CLASSES, segmenter_lib.WIDTH, seed=config.seed)


def train_segmenter_a(data, config):
    """A fresh S_A (seed --seed) trained on --sem_epochs epochs of the training views of the
    source images with their labels: `data`'s epochs 1, 2, ... (data.unaligned, serving
    "a" and "a_labels"), the crops and flips the generator sees, in batches of
    models.segmenter.BATCH_SIZE. Deterministic on one machine without TensorFlow's
    process-wide op determinism: seeded weights, stateless views in a fixed order, no random
    op."""
    batch = min(segmenter_lib.BATCH_SIZE, max(data.size_a, data.size_b))
    if batch > 1:
        data.require_one_size(f"S_A trains on batches of {batch} views", "pass --sem_segmenter")
    views = None
    for epoch in range(1, config.sem_epochs + 1):
        epoch_views = data.epoch_dataset(epoch, batch).map(
            lambda streams: (streams["a"], streams["a_labels"]))
        views = epoch_views if views is None else views.concatenate(epoch_views)
    return fit_segmenter(_new_segmenter(config), views, config.sem_epochs,
                         segmenter_lib.LEARNING_RATE, steps_per_epoch=data.steps_per_epoch(batch))


def prepare_segmenter(segmenter, data, run_dir, config):
    """Fills `build_segmenter_a`'s network with the run's S_A: RUN/SEGMENTER_FILE, trained
    first (`train_segmenter_a`) if the run has none yet. Nothing for --sem_segmenter."""
    if config.sem_segmenter:
        return
    path = os.path.join(run_dir, SEGMENTER_FILE)
    if os.path.exists(path):
        logging.info("S_A of --lambda_sem: %s", path)
    else:
        logging.info("Training S_A of --lambda_sem on the training views of %s and their "
                     "labels (%d epochs)", config.dataroot, config.sem_epochs)
        os.makedirs(run_dir, exist_ok=True)
        partial = os.path.join(run_dir, "partial_" + SEGMENTER_FILE)
        train_segmenter_a(data, config).save_weights(partial)
        os.replace(partial, path)  # a run stopped while saving leaves no half-written S_A
    segmenter.load_weights(path)


def cell_labels(labels, grid):
    """The majority label of each cell of an h x w grid over label maps: int [B, H, W] train
    ids -> int32 [B, h·w] in raster order (the N axis of a layer's features), -1 where most
    of the cell is unlabelled (IGNORE_TRAIN_ID). A cell is (H/h) x (W/w) pixels; ties go to
    the lower train id. A grid of (H + 2p) x (W + 2p) is the map reflection-padded by p.
    """
    height, width = labels.shape[1:3]
    rows, columns = grid
    if (rows - height) % 2 == 0 and (columns - width) % 2 == 0 and rows > height:
        # A grid larger than the map is a reflection-padded layer (the generator's layer 0:
        # the image padded by 3 on each side), whose border positions mirror the image's.
        margins = [[0, 0], [(rows - height) // 2] * 2, [(columns - width) // 2] * 2]
        labels = tf.pad(labels, margins, mode="REFLECT")
        height, width = rows, columns
    if height % rows or width % columns:
        raise ValueError(f"label maps of {height}x{width} do not split into a {rows}x{columns} "
                         "grid of equal cells")
    classes = tf.where(tf.equal(labels, IGNORE_TRAIN_ID), NUM_CLASSES, tf.cast(labels, tf.int32))
    cells = tf.reshape(tf.one_hot(classes, NUM_CLASSES + 1),
                       [-1, rows, height // rows, columns, width // columns, NUM_CLASSES + 1])
    counts = tf.reduce_sum(cells, axis=[2, 4])  # exact: sums of ones
    # counts·(K+1) + (K − class): distinct for every class, so one maximum, the lower id of
    # the most frequent (argmax alone does not promise which of tied maxima it returns).
    ranks = counts * (NUM_CLASSES + 1) + tf.range(NUM_CLASSES, -1, -1, dtype=tf.float32)
    majority = tf.argmax(ranks, axis=-1, output_type=tf.int32)
    majority = tf.where(tf.equal(majority, NUM_CLASSES), -1, majority)
    return tf.reshape(majority, [-1, rows * columns])
