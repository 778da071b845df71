"""The small segmentation network of the downstream experiment, and its train / predict /
score / export helpers on folders of images plus label maps.

The experiment asks whether a translation keeps every object in place, not how good a
segmenter can get, so the network is deliberately small (95k weights at width 32)
and trains in minutes on a CPU. Every run of it with one seed starts from the same weights,
so the arms of the experiment differ only in their training images:

    images [B, H, W, 3] in [-1, 1], H and W even
    conv 3x3, w, ReLU                   -> [B, H, W, w]        colour and edges
    conv 3x3 stride 2, 2w, ReLU         -> [B, H/2, W/2, 2w]
    conv 3x3 dilation 2, 2w, ReLU       -> receptive field 15 px
    conv 3x3 dilation 4, 2w, ReLU       -> receptive field 31 px: horizon, road shape
    bilinear x2, concat with the first conv's output  -> [B, H, W, 3w]
    conv 1x1, K                         -> logits [B, H, W, K]

Labels on disk are single-channel maps of Cityscapes label ids (what the synthetic set
writes); the network predicts the K = 19 Cityscapes train ids (`data.labels.to_train_ids`),
and every other id becomes the ignore label 255.
"""
import hashlib
import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from tfattncut.data.image_files import decode_image
from tfattncut.data.labels import TRAIN_CLASSES, to_train_ids
from tfattncut.evaluation import images as image_files
from tfattncut.metrics import segmentation
from tfattncut.pixels import from_uint8

NUM_CLASSES = len(TRAIN_CLASSES)
ENDPOINT = "serve"


class Upsample2x(keras.layers.Layer):
    """Bilinear x2 upsampling. Keras' UpSampling2D(interpolation="bilinear") cannot be traced
    with unknown H and W, which the exported signature has."""

    def call(self, images):
        return tf.image.resize(images, 2 * tf.shape(images)[1:3], method="bilinear")


def build_segmenter(num_classes=NUM_CLASSES, width=32, seed=0):
    """The network above; `seed` fixes the initial weights."""
    def conv(filters, kernel, index, **kwargs):
        return keras.layers.Conv2D(
            filters, kernel, padding="same", kernel_initializer=keras.initializers.GlorotUniform(
                seed=seed + index), **kwargs)

    images = keras.Input([None, None, 3], name="images")
    fine = conv(width, 3, 0, activation="relu")(images)
    coarse = conv(2 * width, 3, 1, strides=2, activation="relu")(fine)
    coarse = conv(2 * width, 3, 2, dilation_rate=2, activation="relu")(coarse)
    coarse = conv(2 * width, 3, 3, dilation_rate=4, activation="relu")(coarse)
    up = Upsample2x()(coarse)
    logits = conv(num_classes, 1, 4)(keras.layers.Concatenate()([up, fine]))
    return keras.Model(images, logits, name="segmenter")


def read_train_ids(path):
    """A label map file of Cityscapes label ids -> uint8 [H, W] train ids (255: ignore)."""
    with Image.open(path) as image:
        if image.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(
                f"Label map {path} has mode {image.mode}: expected a single-channel map of "
                f"Cityscapes label ids (as the synthetic set writes), not a colour-coded one.")
        return to_train_ids(np.asarray(image))


def load_pairs(image_paths, label_dir, flag="--labels"):
    """(uint8 [N, H, W, 3] images, uint8 [N, H, W] train ids) of the images and their label
    maps (same stem in `label_dir`; `flag` names that folder in errors).

    Kept as uint8 in memory: 1000 images of 128² take 65 MB.
    """
    label_paths = image_files.match_by_stem(image_paths, label_dir, flag)
    pixels, labels = [], []
    for image_path, label_path in zip(image_paths, label_paths):
        pixels.append(decode_image(tf.io.read_file(image_path)).numpy())
        labels.append(read_train_ids(label_path))
        _check_same_size(image_path, pixels[-1].shape[:2], label_path, labels[-1].shape)
    sizes = {p.shape for p in pixels}
    if len(sizes) > 1:
        raise ValueError(f"Training images must share one size; {os.path.dirname(image_paths[0])} "
                         f"has {sorted(sizes)}.")
    return np.stack(pixels), np.stack(labels)


def _check_same_size(image_path, image_shape, label_path, label_shape):
    if tuple(image_shape) != tuple(label_shape):
        raise ValueError(f"Label map {label_path} is {tuple(label_shape)} but its image "
                         f"{image_path} is {tuple(image_shape)}; they must match pixel for pixel.")


def train_segmenter(image_paths, label_dir, epochs, batch_size=8, learning_rate=1e-3, seed=0,
                    width=32):
    """A freshly built segmenter (`seed`) trained on the images and their label maps
    (`fit_segmenter` on `load_pairs`). Returns the Keras model."""
    pixels, labels = load_pairs(image_paths, label_dir)
    return fit_segmenter(pixels, labels, epochs, batch_size, learning_rate, seed, width)


def fit_segmenter(pixels, labels, epochs, batch_size=8, learning_rate=1e-3, seed=0, width=32):
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
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True, ignore_class=segmentation.IGNORE_LABEL))
    model.fit(dataset, epochs=epochs, shuffle=False, verbose=2)  # shuffled above, seeded
    return model


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
    label_paths = image_files.match_by_stem(image_paths, label_dir, flag)
    accumulator = segmentation.ConfusionAccumulator(NUM_CLASSES)
    batches = image_files.with_progress(image_files.ImageSet(image_paths, batch_size),
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


def load_segmenter(path):
    """A SavedModel segmenter as a callable images -> logits.

    Any SavedModel whose serving_default signature takes one image tensor [B, H, W, 3] in
    [-1, 1] and returns `logits` (or a single output) [B, H, W, 19] works.
    """
    wanted = ("a serving_default signature from float32 images [B, H, W, 3] in [-1, 1] to "
              "logits [B, H, W, 19] (launch.downstream writes one as segmenter_B/)")
    if not tf.saved_model.contains_saved_model(path):
        raise FileNotFoundError(f"--segmenter={path} is not a SavedModel folder (no "
                                f"saved_model.pb); expected {wanted}.")
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get("serving_default")
    inputs = signature.structured_input_signature[1] if signature is not None else {}
    specs = list(inputs.values())
    if len(specs) != 1 or specs[0].dtype != tf.float32 or specs[0].shape.rank != 4:
        found = ", ".join(f"{name} {spec.dtype.name} {spec.shape}"
                          for name, spec in inputs.items()) or "none"
        raise ValueError(f"--segmenter={path}: expected {wanted}; its serving_default takes "
                         f"{found}.")
    (input_name,) = inputs

    def segment(images):
        outputs = signature(**{input_name: tf.convert_to_tensor(images, tf.float32)})
        if "logits" in outputs:
            return outputs["logits"]
        if len(outputs) != 1:
            raise ValueError(f"--segmenter={path}: the signature returns {sorted(outputs)}; "
                             f"expected 'logits' or a single output.")
        return next(iter(outputs.values()))

    segment.saved_model = loaded  # keeps the restored variables alive with the callable
    return segment
