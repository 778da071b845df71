"""SavedModels in TensorFlow Serving's layout: `EXPORT_DIR/NAME/VERSION/`.

Three signatures, all built on `tfattncut.inference.translate` (so padding to the generator's
stride and cropping back happen inside the graph, for any H, W >= MIN_SIDE):
  serving_default    images uint8 [B, H, W, 3]           -> translated uint8 [B, H, W, 3]
  translate_float    images float32 [B, H, W, 3] in [-1, 1] -> translated float32, same shape
  translate_encoded  image_bytes string [B] (JPEG/PNG/BMP/GIF/WebP) -> translated_bytes string [B]
                     (PNG); an image whose header declares more than max_image_pixels pixels
                     is refused before decoding, so tensorflow_model_server is guarded too
The `_bytes` suffix matters: TF Serving's REST API base64-encodes only outputs named so.

Next to the SavedModel, `assets.extra/` holds the model facts (`tfattncut.json`) and warm-up
requests in TF Serving's format (`tf_serving_warmup_requests`, a TFRecord of PredictionLog),
and EXPORT_DIR holds `models.config` and `batching.config` for `tensorflow_model_server`.
"""
import dataclasses
import json
import os
import re
import shutil

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfattncut.data.image_files import decode_image
from tfattncut.inference import MIN_SIDE, find_run, load_translator, translate
from tfattncut.pixels import from_uint8, to_uint8
from tfattncut.serving import image_header
from tfattncut.serving.version_folders import list_versions

INPUT, OUTPUT = "images", "translated"
BYTES_INPUT, BYTES_OUTPUT = "image_bytes", "translated_bytes"
# What a request that names no signature runs (TF Serving's default key); ModelServer, bulk
# jobs and clients call it by this name.
DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
SIGNATURES = (DEFAULT_SIGNATURE, "translate_float", "translate_encoded")
FACTS_FILE = "tfattncut.json"
WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"
# Where `docker run -v $PWD/saved_models:/models tensorflow/serving` sees the export root.
CONTAINER_ROOT = "/models"


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters that the embedded server honours (same names)."""
    max_batch_size: int = 16
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 64
    num_batch_threads: int = 2

    def to_text(self):
        """The batching_parameters_file text proto."""
        return "".join(f"{field.name} {{ value: {getattr(self, field.name)} }}\n"
                       for field in dataclasses.fields(self))


class TranslatorModule(tf.Module):
    """The translator with the three serving signatures as tf.functions."""

    def __init__(self, translator, max_image_pixels=image_header.DEFAULT_MAX_IMAGE_PIXELS):
        super().__init__()
        self.translator = translator
        self.max_image_pixels = max_image_pixels

    def _translate(self, images):
        """[B, H, W, 3] in [-1, 1] -> same; a too-small image is an InvalidArgument naming it."""
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        check = tf.debugging.Assert(
            tf.minimum(height, width) >= MIN_SIDE,
            [f"images must be at least {MIN_SIDE}x{MIN_SIDE} pixels; got height, width",
             height, width])
        with tf.control_dependencies([check]):
            return translate(self.translator, images)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def serving_default(self, images):
        return {OUTPUT: to_uint8(self._translate(from_uint8(images)))}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def translate_float(self, images):
        return {OUTPUT: self._translate(images)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def translate_encoded(self, image_bytes):
        def one(contents):
            with tf.control_dependencies([image_header.check_limit(contents,
                                                                   self.max_image_pixels)]):
                image = from_uint8(decode_image(contents))[tf.newaxis]
            return tf.io.encode_png(to_uint8(self._translate(image))[0])

        # One image at a time: encoded images of one request may differ in size.
        return {BYTES_OUTPUT: tf.map_fn(one, image_bytes, fn_output_signature=tf.string)}

    def signatures(self):
        return {name: getattr(self, name).get_concrete_function() for name in SIGNATURES}


def warmup_image(size):
    """A smooth deterministic uint8 [size, size, 3] test card."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    return np.stack([ramp[:, None] + 0 * ramp, 0 * ramp[:, None] + ramp,
                     255 - (ramp[:, None] + ramp) / 2], axis=-1).astype(np.uint8)


def warmup_requests(name, size):
    """One PredictRequest per signature on a size² image (what TF Serving replays on load)."""
    image = warmup_image(size)[np.newaxis]
    inputs = {
        DEFAULT_SIGNATURE: {INPUT: image},
        "translate_float": {INPUT: from_uint8(image).numpy()},
        "translate_encoded": {BYTES_INPUT: np.array([tf.io.encode_png(image[0]).numpy()],
                                                    dtype=object)},
    }
    requests = []
    for signature in SIGNATURES:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
        for key, value in inputs[signature].items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        requests.append(request)
    return requests


def write_warmup_file(path, requests):
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_file(path):
    """The PredictRequests of a tf_serving_warmup_requests file."""
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        requests.append(log.predict_log.request)
    return requests


def checkpoint_step(prefix):
    """The training step stored in a checkpoint, or None (e.g. an imported one)."""
    reader = tf.train.load_checkpoint(prefix)
    key = "step/.ATTRIBUTES/VARIABLE_VALUE"
    return int(reader.get_tensor(key)) if reader.has_tensor(key) else None


def next_version(model_dir):
    """1 + the largest integer version folder in `model_dir` (1 if none)."""
    return max(list_versions(model_dir), default=0) + 1


_STAGING = re.compile(r"^\.staging-\d+-(\d+)$")


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_staging(model_dir):
    """Deletes the `.staging-VERSION-PID` folders of exports whose process has died (killed
    mid-save); those of running exports stay. Returns the deleted paths."""
    stale = [os.path.join(model_dir, name) for name in os.listdir(model_dir)
             if (match := _STAGING.match(name)) and not _running(int(match.group(1)))]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def save_servable(translator, path, facts, name, warmup_size,
                  max_image_pixels=image_header.DEFAULT_MAX_IMAGE_PIXELS):
    """Writes the SavedModel and its assets.extra/ into the new folder `path`.

    It is written beside `path` and renamed into place, so a server polling the model folder
    never sees a half-written version; what a killed export left there is removed first.
    """
    parent, version = os.path.split(os.path.normpath(path))
    os.makedirs(parent, exist_ok=True)
    remove_stale_staging(parent)
    staging = os.path.join(parent, f".staging-{version}-{os.getpid()}")
    if tf.io.gfile.exists(staging):
        tf.io.gfile.rmtree(staging)
    try:
        module = TranslatorModule(translator, max_image_pixels)
        tf.saved_model.save(module, staging, signatures=module.signatures())
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, FACTS_FILE), "w") as f:
            json.dump(facts, f, indent=2, sort_keys=True)
        write_warmup_file(os.path.join(extra, WARMUP_FILE), warmup_requests(name, warmup_size))
        os.rename(staging, path)
    except BaseException:  # what this live process leaves, no later export would remove
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_models_config(export_dir):
    """EXPORT_DIR/models.config as a ModelServerConfig (empty if there is none yet)."""
    path = os.path.join(export_dir, MODELS_CONFIG)
    config = model_server_config_pb2.ModelServerConfig()
    if os.path.exists(path):
        with open(path) as f:
            try:
                text_format.Parse(f.read(), config)
            except text_format.ParseError as error:
                raise ValueError(f"{path} is not a ModelServerConfig text proto ({error}); "
                                 "fix or delete it and export again") from None
    return config


def update_models_config(export_dir, name, config=None):
    """Adds (or keeps) NAME in EXPORT_DIR/models.config, a model_config_list for
    `tensorflow_model_server --model_config_file`; base paths are as seen in the container.
    `config`: the file as `read_models_config` read it (default: read it now)."""
    path = os.path.join(export_dir, MODELS_CONFIG)
    config = read_models_config(export_dir) if config is None else config
    entries = config.model_config_list.config
    entry = next((e for e in entries if e.name == name), None) or entries.add(name=name)
    entry.base_path = f"{CONTAINER_ROOT}/{name}"
    entry.model_platform = "tensorflow"
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config))
    return path


def write_batching_config(export_dir):
    """EXPORT_DIR/batching.config with BatchingOptions' defaults, unless one exists (it may
    hold tuned values)."""
    path = os.path.join(export_dir, BATCHING_CONFIG)
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(BatchingOptions().to_text())
    return path


def export(checkpoint, name, export_dir="saved_models", version=None, direction="AtoB",
           max_image_pixels=image_header.DEFAULT_MAX_IMAGE_PIXELS):
    """Exports a run's translator to EXPORT_DIR/NAME/VERSION (VERSION: next free integer by
    default) and updates EXPORT_DIR's models.config / batching.config; returns the path.
    `translate_encoded` refuses images declaring more than max_image_pixels pixels."""
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"--name={name!r} must be a plain folder name")
    image_header.check_pixel_limit(max_image_pixels)
    model_dir = os.path.join(export_dir, name)
    version = next_version(model_dir) if version is None else version
    if version < 1:
        raise ValueError(f"--version must be a positive integer; got {version}")
    path = os.path.join(model_dir, str(version))
    if tf.io.gfile.exists(path):
        raise FileExistsError(f"{path} exists; versions are immutable once served: leave "
                              f"--version out to export version {next_version(model_dir)}")
    models_config = read_models_config(export_dir)  # a damaged one fails before the export
    translator, config = load_translator(checkpoint, direction)
    _, prefix = find_run(checkpoint)
    facts = {
        "method": config.model, "selector": config.selector, "direction": direction,
        "step": checkpoint_step(prefix), "crop_size": config.crop_size,
        "checkpoint": os.path.abspath(prefix), "signatures": list(SIGNATURES),
        "min_side": MIN_SIDE, "max_image_pixels": max_image_pixels,
        "config": json.loads(config.to_json()),
    }
    save_servable(translator, path, facts, name, config.crop_size, max_image_pixels)
    update_models_config(export_dir, name, models_config)
    write_batching_config(export_dir)
    return path
