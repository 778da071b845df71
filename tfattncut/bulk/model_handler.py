"""The SavedModel a bulk job runs, and the Beam ModelHandler that loads it once per worker
and calls its serving signature.

--model=saved_models/NAME is TF Serving's layout (the newest integer version is used, as the
server would); --model=saved_models/NAME/3 names one version. --checkpoint=runs/NAME is
exported on the fly (`serving.export.export`) into a temporary folder first.
"""
import contextlib
import hashlib
import os
import tempfile

import numpy as np
import tensorflow as tf
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from google.protobuf import message
from tensorflow.core.protobuf import saved_model_pb2

from tfattncut.inference import find_run
from tfattncut.serving.export import DEFAULT_SIGNATURE, INPUT, OUTPUT, export
from tfattncut.serving.version_folders import list_versions

# 2 Mi pixels: one 1052x1914 frame, or 32 256x256 images, per signature call. Memory grows
# with the batch and speed on a CPU does not: with the full-size CUT generator a worker
# peaked at 2.9 GiB for one frame per call and 4.9 GiB for two (launch.benchmark --bulk).
DEFAULT_MAX_BATCH_PIXELS = 1 << 21


def resolve_model(path):
    """A SavedModel folder, or TF Serving's NAME folder -> its newest integer version; checked
    here, before the job starts, to have the signature the workers call."""
    model = path
    if not tf.io.gfile.exists(tf.io.gfile.join(path, "saved_model.pb")):
        versions = list_versions(path)
        if not versions:
            raise FileNotFoundError(f"--model={path} is neither a SavedModel (no "
                                    "saved_model.pb) nor a model folder of integer versions "
                                    "(saved_models/NAME/N); export one with launch.export")
        model = tf.io.gfile.join(path, str(max(versions)))
        if not tf.io.gfile.exists(tf.io.gfile.join(model, "saved_model.pb")):
            # TF Serving, too, serves the newest version folder and fails on this one rather
            # than fall back to an older version.
            raise FileNotFoundError(f"--model={path}: its newest version {model} has no "
                                    "saved_model.pb (an unfinished or failed export?); "
                                    "finish or delete it, or name an older version "
                                    f"(--model={path.rstrip('/')}/N)")
    _check_signature(path, model)
    return model


def _check_signature(flag_value, model):
    """Refuses a SavedModel that cannot be parsed or lacks DEFAULT_SIGNATURE (INPUT -> OUTPUT): the
    workers would fail on it only once the job runs, with a traceback."""
    pb = tf.io.gfile.join(model, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(pb, "rb") as f:
            saved_model.ParseFromString(f.read())
    except message.DecodeError as error:
        raise ValueError(f"--model={flag_value}: {pb} is not a SavedModel ({error})") from None
    signatures = {name: signature for graph in saved_model.meta_graphs
                  for name, signature in graph.signature_def.items()}
    signature = signatures.get(DEFAULT_SIGNATURE)
    if signature is None or INPUT not in signature.inputs or OUTPUT not in signature.outputs:
        raise ValueError(f"--model={flag_value}: {model} has no {DEFAULT_SIGNATURE!r} signature "
                         f"from {INPUT!r} to {OUTPUT!r} (its signatures: {sorted(signatures)}); "
                         "export the translator with launch.export")


def model_identity(model):
    """What tells a SavedModel from another, recorded with a bulk job's outputs: its folder
    and the hash of its saved_model.pb (version folders are immutable once served)."""
    with tf.io.gfile.GFile(tf.io.gfile.join(model, "saved_model.pb"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"model": model, "saved_model_pb_sha256": digest}


def checkpoint_identity(checkpoint, direction="AtoB"):
    """`model_identity` of --checkpoint, whose export goes to a new temporary folder each
    run: the checkpoint it resolves to and the direction."""
    return {"checkpoint": os.path.abspath(find_run(checkpoint)[1]), "direction": direction}


@contextlib.contextmanager
def exported_checkpoint(checkpoint, direction="AtoB"):
    """Exports a run's translator into a temporary folder; yields the SavedModel's path,
    readable by this machine's workers only."""
    with tempfile.TemporaryDirectory(prefix="bulk_translate_") as root:
        yield export(checkpoint, "bulk", root, version=1, direction=direction)


class _Translator:
    """A loaded SavedModel's serving signature: uint8 [B, H, W, 3] -> same.

    The loaded object is kept: a signature outlives the object it came from only until
    garbage collection frees the variables it reads."""

    def __init__(self, path):
        self._loaded = tf.saved_model.load(path)
        self._signature = self._loaded.signatures[DEFAULT_SIGNATURE]

    def translate(self, images):
        return self._signature(**{INPUT: tf.constant(images)})[OUTPUT].numpy()


def _pixels(element):
    """H * W of an image, or of the image of a (key, image) pair, which is what
    BatchElements sees when the handler is wrapped in a KeyedModelHandler."""
    image = element[1] if isinstance(element, tuple) else element
    return image.shape[0] * image.shape[1]


class SavedModelHandler(ModelHandler[np.ndarray, PredictionResult, _Translator]):
    """Translates uint8 [H, W, 3] images with an exported model's `serving_default`
    signature: the same graph, so the same pixels, that TF Serving returns.

    Beam's own TFModelHandlerNumpy/Tensor do not fit: they load with
    `tf.keras.models.load_model`, which under Keras 3 reads only .keras/.h5 files, not a
    SavedModel (`tf.saved_model.load` does); they call the model object rather than a named
    signature; and they stack a whole batch, which fails when images differ in size.

    Batches hold at most `max_batch_pixels` pixels (an image larger than that runs alone),
    so memory stays bounded for large frames; a batch is run as one signature call per
    image size. With `share_across_processes`, one copy of the model serves all the SDK
    worker processes of a machine (Beam's large_model), e.g. to fit one in GPU memory.
    """

    def __init__(self, path, max_batch_pixels=DEFAULT_MAX_BATCH_PIXELS,
                 share_across_processes=False):
        # Equal minimum and maximum: BatchElements fills every batch to the pixel budget.
        super().__init__(min_batch_size=max_batch_pixels, max_batch_size=max_batch_pixels,
                         element_size_fn=lambda element: min(_pixels(element),
                                                             max_batch_pixels),
                         large_model=share_across_processes)
        self._path = path

    def load_model(self):
        return _Translator(self._path)

    def run_inference(self, batch, model, inference_args=None):
        by_size = {}
        for index, image in enumerate(batch):
            by_size.setdefault(image.shape, []).append(index)
        translated = [None] * len(batch)
        for indices in by_size.values():
            outputs = model.translate(np.stack([batch[i] for i in indices]))
            for i, output in zip(indices, outputs):
                translated[i] = output
        return [PredictionResult(image, output) for image, output in zip(batch, translated)]

    def get_num_bytes(self, batch):
        return sum(image.nbytes for image in batch)

    def get_metrics_namespace(self):
        return "bulk_translate_model"
