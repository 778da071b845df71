"""The small segmentation network of the downstream experiment and of label-aware training
(the frozen S_A of semantic consistency, methods/label_aware.py): build, train, load.

The experiment asks whether a translation keeps every object in place, not how good a
segmenter can get, so the network is deliberately small (95k weights at width 32)
and trains in minutes on a CPU. Every run of it with one seed starts from the same weights:

    images [B, H, W, 3] in [-1, 1], H and W even
    conv 3x3, w, ReLU                   -> [B, H, W, w]        colour and edges
    conv 3x3 stride 2, 2w, ReLU         -> [B, H/2, W/2, 2w]
    conv 3x3 dilation 2, 2w, ReLU       -> receptive field 15 px
    conv 3x3 dilation 4, 2w, ReLU       -> receptive field 31 px: horizon, road shape
    bilinear x2, concat with the first conv's output  -> [B, H, W, 3w]
    conv 1x1, K                         -> logits [B, H, W, K]

It predicts the K = 19 Cityscapes train ids (data.labels), 255 being the ignore label.
"""
import keras
import tensorflow as tf

from tfattncut.data.labels import IGNORE_TRAIN_ID, TRAIN_CLASSES

NUM_CLASSES = len(TRAIN_CLASSES)


class Upsample2x(keras.layers.Layer):
    """Bilinear x2 upsampling. Keras' UpSampling2D(interpolation="bilinear") cannot be traced
    with unknown H and W, which the exported signature has."""

    def call(self, images):
        return tf.image.resize(images, 2 * tf.shape(images)[1:3], method="bilinear")


# The segmenter's training recipe: the downstream experiment's (evaluation.segmenter), which
# the label-aware methods' S_A trains with too (docs/design/losses.md).
WIDTH = 32
BATCH_SIZE = 8
LEARNING_RATE = 1e-3


def build_segmenter(num_classes=NUM_CLASSES, width=WIDTH, seed=0):
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


def fit_segmenter(model, dataset, epochs, learning_rate=LEARNING_RATE, steps_per_epoch=None):
    """Trains `model` on `dataset`'s batches (images [B, H, W, 3] in [-1, 1], train ids
    [B, H, W]) in the dataset's order: Adam, per-pixel softmax cross-entropy ignoring label
    255. `epochs` passes over the dataset; with `steps_per_epoch`, one pass over a dataset
    that holds all `epochs`, one after the other (Keras then carries on where the previous
    epoch stopped)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True, ignore_class=IGNORE_TRAIN_ID))
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False,
              verbose=2)
    return model


def load_segmenter(path, flag="--segmenter"):
    """A SavedModel segmenter as a callable images -> logits (`flag` names `path` in errors).

    Any SavedModel whose serving_default signature takes one image tensor [B, H, W, 3] in
    [-1, 1] and returns `logits` (or a single output) [B, H, W, 19] works.
    """
    wanted = ("a serving_default signature from float32 images [B, H, W, 3] in [-1, 1] to "
              "logits [B, H, W, 19] (launch.downstream writes one as segmenter_B/)")
    if not tf.saved_model.contains_saved_model(path):
        raise FileNotFoundError(f"{flag}={path} is not a SavedModel folder (no "
                                f"saved_model.pb); expected {wanted}.")
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get(tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    inputs = signature.structured_input_signature[1] if signature is not None else {}
    specs = list(inputs.values())
    if len(specs) != 1 or specs[0].dtype != tf.float32 or specs[0].shape.rank != 4:
        found = ", ".join(f"{name} {spec.dtype.name} {spec.shape}"
                          for name, spec in inputs.items()) or "none"
        raise ValueError(f"{flag}={path}: expected {wanted}; its serving_default takes "
                         f"{found}.")
    (input_name,) = inputs

    def segment(images):
        outputs = signature(**{input_name: tf.convert_to_tensor(images, tf.float32)})
        if "logits" in outputs:
            return outputs["logits"]
        if len(outputs) != 1:
            raise ValueError(f"{flag}={path}: the signature returns {sorted(outputs)}; "
                             f"expected 'logits' or a single output.")
        return next(iter(outputs.values()))

    segment.saved_model = loaded  # keeps the restored variables alive with the callable
    return segment
