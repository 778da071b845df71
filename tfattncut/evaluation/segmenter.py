"""The downstream experiment's segmenter (tfattncut.models.segmenter) on folders of images
plus label maps: train, predict, score, export.

Labels on disk are single-channel maps of Cityscapes label ids (what the synthetic set
writes); the network predicts the K = 19 Cityscapes train ids (`data.labels.to_train_ids`),
and every other id becomes the ignore label 255. Every run of it with one seed starts from
the same weights, so the arms of the experiment differ only in their training images.
"""
import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from tfattncut.data.image_files import decode_image, match_by_stem
from tfattncut.data.labels import TRAIN_CLASSES, read_train_ids
from tfattncut.evaluation import images as image_sets
from tfattncut.metrics import segmentation
from tfattncut.models.segmenter import (BATCH_SIZE, LEARNING_RATE, NUM_CLASSES, WIDTH,
                                        build_segmenter, fit_segmenter)
from tfattncut.pixels import from_uint8

ENDPOINT = "serve"


def load_pairs(image_paths, label_dir, flag="--labels"):
    """(uint8 [N, H, W, 3] images, uint8 [N, H, W] train ids) of the images and their label
    maps (same stem in `label_dir`; `flag` names that folder in errors).

    Kept as uint8 in memory: 1000 images of 128² take 65 MB.
    """
    label_paths = match_by_stem(image_paths, label_dir, flag)
    pixels, labels = [], []
    for image_path, label_path in zip(image_paths, label_paths):
        pixels.append(decode_image(tf.io.read_file(image_path)).numpy())
        labels.append(read_train_ids(label_path))
        _check_same_size(image_path, pixels[-1].shape[:2], label_path, labels[-1].shape)
    sizes = {p.shape for p in pixels}
    if len(sizes) > 1:
        raise ValueError(f"The images must share one size; {os.path.dirname(image_paths[0])} "
                         f"has {sorted(sizes)}.")
    return np.stack(pixels), np.stack(labels)


def _check_same_size(image_path, image_shape, label_path, label_shape):
    if tuple(image_shape) != tuple(label_shape):
        raise ValueError(f"Label map {label_path} is {tuple(label_shape)} but its image "
                         f"{image_path} is {tuple(image_shape)}; they must match pixel for pixel.")


def train_segmenter(image_paths, label_dir, epochs, batch_size=BATCH_SIZE,
                    learning_rate=LEARNING_RATE, seed=0, width=WIDTH):
    """A freshly built segmenter (`seed`) trained on the images and their label maps
    (`train_on_arrays` on `load_pairs`). Returns the Keras model."""
    pixels, labels = load_pairs(image_paths, label_dir)
    return train_on_arrays(pixels, labels, epochs, batch_size, learning_rate, seed, width)


def train_on_arrays(pixels, labels, epochs, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                    seed=0, width=WIDTH):
    """A freshly built segmenter (`seed`) trained on uint8 [N, H, W, 3] images and their
    uint8 [N, H, W] train ids.

    Adam, per-pixel softmax cross-entropy ignoring label 255; data shuffled per epoch from
    `seed`. Returns the Keras model.
    """
    model = build_segmenter(width=width, seed=seed)
    dataset = (tf.data.Dataset.from_tensor_slices((pixels, labels))
               .shuffle(len(pixels), seed=seed, reshuffle_each_iteration=True)
               .map(lambda images, labels: (from_uint8(images), labels))
               .batch(batch_size))
    return fit_segmenter(model, dataset, epochs, learning_rate)  # shuffled above, seeded


def predict(segmenter, images):
    """Train ids int64 [B, H, W] of images [B, H, W, 3] in [-1, 1] (H, W even).

    segmenter: a callable images -> logits [B, H, W, K]: a `build_segmenter` model or
    `load_segmenter`'s result.
    """
    if images.shape[1] % 2 or images.shape[2] % 2:
        raise ValueError(f"The segmenter needs even image sizes; got {images.shape[1:3]}.")
    logits = segmenter(images)
    if logits.shape[-1] != NUM_CLASSES:
        raise ValueError(f"The segmenter gives {logits.shape[-1]} class scores per pixel; "
                         f"expected {NUM_CLASSES} (the Cityscapes train ids).")
    return tf.argmax(logits, axis=-1)


def score_segmenter(segmenter, image_paths, label_dir, batch_size=8, flag="--labels"):
    """`segmentation.SegmentationScores` of the segmenter's predictions on the images against
    their label maps in `label_dir`, from one confusion matrix over the whole set."""
    label_paths = match_by_stem(image_paths, label_dir, flag)
    accumulator = segmentation.ConfusionAccumulator(NUM_CLASSES)
    batches = image_sets.with_progress(image_sets.ImageSet(image_paths, batch_size),
                                        len(image_paths), "Segmenting")
    for start, batch in zip(range(0, len(image_paths), batch_size), batches):
        predictions = predict(segmenter, batch)
        labels = []
        for offset, label_path in enumerate(label_paths[start:start + batch_size]):
            labels.append(read_train_ids(label_path))
            _check_same_size(image_paths[start + offset], predictions.shape[1:],
                             label_path, labels[-1].shape)
        accumulator.update(np.stack(labels), predictions)
    return accumulator.result()


def score_arrays(segmenter, pixels, labels, batch_size=32):
    """`score_segmenter` of uint8 [N, H, W, 3] images against uint8 [N, H, W] train ids held
    in memory (the study's cached path: no files, no decoding)."""
    accumulator = segmentation.ConfusionAccumulator(NUM_CLASSES)
    for start in range(0, len(pixels), batch_size):
        accumulator.update(labels[start:start + batch_size], predict(
            segmenter, from_uint8(tf.constant(pixels[start:start + batch_size]))))
    return accumulator.result()


def scores_dict(scores):
    """SegmentationScores -> JSON-ready dict; per-class IoU by class name, None where a class
    is in neither the labels nor the predictions."""
    return {
        "mean_iou": scores.mean_iou,
        "pixel_accuracy": scores.pixel_accuracy,
        "mean_class_accuracy": scores.mean_class_accuracy,
        "per_class_iou": {name: None if np.isnan(iou) else float(iou)
                          for name, iou in zip(TRAIN_CLASSES, scores.per_class_iou)},
    }


def logits_and_features(model):
    """A Keras model images -> (logits [B, H, W, K], hidden [B, H, W, C]): `model`'s logits
    and what its last layer sees, whose spatial mean is the segmenter's feature space
    (`--inception=segmenter:PATH`; C = 3w for `build_segmenter`)."""
    return keras.Model(model.inputs, [model.output, model.layers[-1].input])


def features(model, pixels, batch_size=32):
    """float32 [N, C]: the spatial mean of what `model`'s last layer sees, for uint8
    [N, H, W, 3] images (what an exported segmenter's `features` output gives)."""
    outputs = logits_and_features(model)
    rows = []
    for start in range(0, len(pixels), batch_size):
        _, hidden = outputs(from_uint8(tf.constant(pixels[start:start + batch_size])),
                            training=False)
        rows.append(tf.reduce_mean(hidden, axis=[1, 2]).numpy())
    return np.concatenate(rows)


def export_segmenter(model, path):
    """Writes a SavedModel whose serving signature maps `images` [B, H, W, 3] float32 in
    [-1, 1] to `logits` [B, H, W, K] (the input of `launch.evaluate --segmenter`) and
    `features` [B, C], the spatial mean of what the last layer sees (`logits_and_features`)."""
    outputs = logits_and_features(model)

    def serve(images):
        logits, hidden = outputs(images, training=False)
        return {"logits": logits, "features": tf.reduce_mean(hidden, axis=[1, 2])}

    archive = keras.export.ExportArchive()
    archive.track(outputs)
    archive.add_endpoint(
        ENDPOINT, serve,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    archive.write_out(path, verbose=False)
    return path


def fingerprint(variables):
    """The first 16 hex digits of the SHA-256 of `variables` (in order, as float32): which
    segmenter scored a result. Training one is not bit-reproducible across CPUs (oneDNN
    picks other kernels), so the same seed on another machine gives another scorer."""
    digest = hashlib.sha256()
    for variable in variables:
        digest.update(np.asarray(variable, np.float32).tobytes())
    return digest.hexdigest()[:16]
