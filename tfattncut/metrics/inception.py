"""Inception v3 feature extractors for FID / KID / IS, loaded from local files only.

`load_backbone(spec)` returns a `Backbone`: images [B, H, W, 3] float32 in [-1, 1] ->
(pool features [B, D], logits [B, K]), with a bilinear resize to 299x299 inside.

- `fid2015:PATH`: the 2015 Inception graph `classify_image_graph_def.pb` (from
  inception-2015-12-05.tgz) of the original TTUR FID code; pytorch-fid ports its weights and
  TF-GAN's `frozen_inception_v1_2015_12_05` is the same network re-frozen with its input at
  `Mul:0`. Fed as TTUR feeds it: RGB in [0, 255] at `ExpandDims:0`; the graph then resizes
  to 299 (a no-op: the resize to 299 happens before, with half-pixel centres like
  pytorch-fid's) and maps to [-1, 1] as (x - 128) / 128. Features from `pool_3:0` (2048),
  logits from `softmax/logits:0` (1008 classes, bias included). Only this backbone's
  numbers are comparable with published ones.
- `keras:PATH`: keras.applications.InceptionV3 (ImageNet top, 1000 classes) with a local
  `.h5` / `.weights.h5` / `.keras` weights file; features from `avg_pool`, logits are the
  `predictions` layer before its softmax.
- `segmenter:PATH`: a segmenter SavedModel exported by `evaluation.segmenter` (its
  `features` output, the spatial mean of the last hidden layer; logits = the per-class
  logits averaged over the pixels), at the images' own size. Trained on the target domain, it
  gives a domain-specific FID/KID for data sets where an ImageNet network sees little (the
  method study's); its numbers are not comparable with published Inception FIDs.
- `random`: a tiny fixed-seed random conv net (64 features, 10 classes) for smoke tests;
  its numbers mean nothing.
"""
import os
import zipfile

import keras
import tensorflow as tf
from google.protobuf.message import DecodeError

INPUT_SIZE = 299
FID2015_FILE = "classify_image_graph_def.pb"
FID2015_ARCHIVE = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
KERAS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
_SPECS = "'fid2015:PATH', 'keras:PATH', 'segmenter:SAVEDMODEL' or 'random'"


class Backbone:
    """A feature extractor plus what a report must say about it.

    name: 'fid2015', 'keras', 'segmenter' or 'random'.
    comparable: whether its FID/KID/IS can be compared with published numbers.
    feature_dim, num_classes: D and K of the outputs.
    input_size: the square size images are resized to first (None: their own size).
    """

    def __init__(self, name, net, feature_dim, num_classes, comparable, input_size=INPUT_SIZE):
        self.name = name
        self.comparable = comparable
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.input_size = input_size
        self._net = net
        self._call = tf.function(
            self._forward,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

    def _forward(self, images):
        resized = (images if self.input_size is None else
                   tf.image.resize(images, [self.input_size] * 2, method="bilinear"))
        features, logits = self._net(resized)
        return tf.reshape(features, [-1, self.feature_dim]), logits

    def __call__(self, images):
        """images [B, H, W, 3] in [-1, 1] -> (features [B, D], logits [B, K]), float32."""
        return self._call(tf.convert_to_tensor(images, tf.float32))


def _require_file(path, kind, needed):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Backbone '{kind}' needs {needed}, looked for at '{path}' (the PATH of "
            f"'{kind}:PATH'), but no such file exists. Nothing is downloaded at run time: "
            f"place the file there or pass its location.")


def _fid2015(path):
    _require_file(path, "fid2015", f"the frozen 2015 Inception graph '{FID2015_FILE}' "
                  f"(extract it from {FID2015_ARCHIVE})")
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        try:
            graph_def.ParseFromString(f.read())
        except DecodeError:
            raise ValueError(
                f"'fid2015:{path}' is not a frozen TensorFlow graph (a GraphDef protobuf): "
                f"expected the 2015 Inception graph '{FID2015_FILE}' extracted from "
                f"{FID2015_ARCHIVE}.") from None
    nodes = {node.name: node for node in graph_def.node}
    for name in ("ExpandDims", "pool_3", "softmax/logits"):
        if name not in nodes:
            raise ValueError(
                f"'{path}' is not the 2015 Inception graph {FID2015_FILE}: it has no node "
                f"'{name}' (needed: ExpandDims, pool_3, softmax/logits).")
    # The graph flattens pool_3 with a constant shape [1, 2048]: it was frozen for one
    # image at a time. Feeding [-1, 2048] instead lets softmax/logits run on a batch.
    flat_shapes = {}
    reshape = nodes.get("pool_3/_reshape")
    if reshape is not None and nodes[reshape.input[1]].op == "Const":
        shape = tf.make_ndarray(nodes[reshape.input[1]].attr["value"].tensor)
        flat_shapes[reshape.input[1] + ":0"] = [-1, *shape[1:]]

    def imported(images):
        input_map = {name: tf.constant(shape, tf.int32) for name, shape in flat_shapes.items()}
        input_map["ExpandDims:0"] = (images + 1.0) * 127.5
        return tf.compat.v1.import_graph_def(
            graph_def, input_map=input_map,
            return_elements=["pool_3:0", "softmax/logits:0"], name="fid2015")

    net = tf.compat.v1.wrap_function(
        imported, [tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3], tf.float32)])
    pool_shape = net.structured_outputs[0].shape
    logits_shape = net.structured_outputs[1].shape
    return Backbone("fid2015", net, feature_dim=int(pool_shape[-1]),
                    num_classes=int(logits_shape[-1]), comparable=True)


def _keras(path):
    _require_file(path, "keras", f"an ImageNet InceptionV3 weights file for "
                  f"keras.applications.InceptionV3(include_top=True), e.g. '{KERAS_FILE}'")
    model = keras.applications.InceptionV3(weights=None, include_top=True)
    try:
        model.load_weights(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:  # h5py's, Keras', .keras'
        raise ValueError(
            f"'keras:{path}' could not be loaded into keras.applications.InceptionV3"
            f"(include_top=True) ({error}); expected its ImageNet weights as .h5, .weights.h5 "
            f"or .keras, e.g. '{KERAS_FILE}'.") from None
    pool = keras.Model(model.input, model.get_layer("avg_pool").output)
    dense = model.get_layer("predictions")

    def net(images):
        # The Keras head applies softmax; IS and reports need the logits before it.
        features = pool(images, training=False)
        return features, tf.matmul(features, dense.kernel) + dense.bias

    return Backbone("keras", net, feature_dim=int(dense.kernel.shape[0]),
                    num_classes=int(dense.kernel.shape[1]), comparable=False)


def _random(seed=0, feature_dim=64, num_classes=10):
    """No weights file and milliseconds per batch: for smoke tests of the evaluation path."""
    def init(offset):
        return keras.initializers.GlorotUniform(seed=seed + offset)

    body = keras.Sequential([
        keras.layers.Input([INPUT_SIZE, INPUT_SIZE, 3]),
        keras.layers.Conv2D(16, 5, strides=4, activation="relu", kernel_initializer=init(0)),
        keras.layers.Conv2D(feature_dim, 3, strides=4, activation="relu",
                            kernel_initializer=init(1)),
        keras.layers.GlobalAveragePooling2D(),
    ])
    head = keras.layers.Dense(num_classes, kernel_initializer=init(2))
    head.build([None, feature_dim])

    def net(images):
        features = body(images, training=False)
        return features, head(features)

    return Backbone("random", net, feature_dim=feature_dim, num_classes=num_classes,
                    comparable=False)


def _segmenter(path):
    if not tf.saved_model.contains_saved_model(path):
        raise FileNotFoundError(
            f"Backbone 'segmenter' needs a segmenter SavedModel folder at '{path}' (the PATH "
            f"of 'segmenter:PATH'; launch.downstream and launch.study export one), but it "
            f"holds no saved_model.pb.")
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get(tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    outputs = signature.structured_outputs if signature is not None else {}
    if not {"features", "logits"} <= set(outputs):
        raise ValueError(f"'segmenter:{path}': its serving_default signature returns "
                         f"{sorted(outputs)}; expected 'features' and 'logits', as in the "
                         f"segmenter_B/ that launch.downstream and launch.study write.")
    (input_name,) = signature.structured_input_signature[1]

    def net(images):
        result = signature(**{input_name: images})
        return result["features"], tf.reduce_mean(result["logits"], axis=[1, 2])

    backbone = Backbone("segmenter", net, feature_dim=int(outputs["features"].shape[-1]),
                        num_classes=int(outputs["logits"].shape[-1]), comparable=False,
                        input_size=None)
    backbone.saved_model = loaded  # keeps the restored variables alive
    return backbone


def load_backbone(spec):
    """Backbone from 'fid2015:PATH', 'keras:PATH', 'segmenter:PATH' or 'random'."""
    kind, _, path = spec.partition(":")
    if kind == "random" and not path:
        return _random()
    loaders = {"fid2015": _fid2015, "keras": _keras, "segmenter": _segmenter}
    if kind in loaders and path:
        return loaders[kind](os.path.expanduser(path))
    raise ValueError(f"Unknown backbone spec '{spec}': expected {_SPECS}.")
