"""The backbones' loaders: a tiny stand-in for the 2015 graph with the real tensor names,
a randomly initialised Keras InceptionV3 saved and reloaded, the random net, and errors."""
import os
import tempfile

import keras
import numpy as np
import scipy.special
import tensorflow as tf

from tfattncut.metrics import inception

_WIDTH, _CLASSES = 8, 5


def _write_fake_2015_graph(path, seed=0):
    """A frozen GraphDef wired like classify_image_graph_def.pb, at stand-in widths.

    DecodeJpeg -> ExpandDims -> ResizeBilinear (299) -> Sub 128 -> Mul 1/128 -> 1x1 conv
    + ReLU -> average pools -> pool_3 [1, 1, 1, W] -> pool_3/_reshape (constant shape [1, W]) ->
    softmax/logits = MatMul + biases -> softmax. Shapes are recorded for one image, as the
    original was frozen. Returns the weights for the NumPy oracle.
    """
    rng = np.random.default_rng(seed)
    conv = rng.normal(size=(3, _WIDTH)).astype(np.float32)
    weights = rng.normal(size=(_WIDTH, _CLASSES)).astype(np.float32)
    biases = rng.normal(size=(_CLASSES,)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        decoded = tf.compat.v1.placeholder(tf.float32, [None, None, 3], name="DecodeJpeg")
        expanded = tf.expand_dims(decoded, 0, name="ExpandDims")
        resized = tf.compat.v1.image.resize_bilinear(expanded, [299, 299], name="ResizeBilinear")
        scaled = tf.multiply(tf.subtract(resized, 128.0, name="Sub"), 1.0 / 128.0, name="Mul")
        hidden = tf.nn.relu(tf.nn.conv2d(scaled, conv[None, None], 1, "VALID"))
        # 299 = 13 x 23: two exact average pools, short float32 sums (like the real 8x8).
        pooled = tf.nn.avg_pool2d(hidden, 13, 13, "VALID")
        pool = tf.nn.avg_pool2d(pooled, 23, 1, "VALID", name="pool_3")
        shape = tf.constant([1, _WIDTH], name="pool_3/_reshape/shape")
        flat = tf.reshape(pool, shape, name="pool_3/_reshape")
        matmul = tf.matmul(flat, tf.constant(weights, name="softmax/weights"),
                           name="softmax/logits/MatMul")
        logits = tf.add(matmul, tf.constant(biases, name="softmax/biases"), name="softmax/logits")
        tf.nn.softmax(logits, name="softmax")
    with open(path, "wb") as f:
        f.write(graph.as_graph_def(add_shapes=True).SerializeToString())
    return conv, weights, biases


def _numpy_fake_2015(images, conv, weights, biases):
    """TTUR's feeding ([-1, 1] -> [0, 255]) then the graph's own arithmetic."""
    pixels = (images.astype(np.float64) + 1.0) * 127.5
    hidden = np.maximum(((pixels - 128.0) / 128.0) @ conv, 0.0)
    pool = hidden.mean(axis=(1, 2))
    return pool, pool @ weights + biases


class _OncePerClass:
    """Mixin: writes a weights file and loads its backbone once per class (both are slow)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.backbone = inception.load_backbone(cls.write_weights(cls.tmp.name))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        super().tearDownClass()


class Fid2015Test(_OncePerClass, tf.test.TestCase):

    @classmethod
    def write_weights(cls, folder):
        path = os.path.join(folder, "classify_image_graph_def.pb")
        cls.params = _write_fake_2015_graph(path)
        return f"fid2015:{path}"

    def test_batched_features_and_logits_match_numpy(self):
        # 299 px inputs: both resizes are identities, so the oracle needs none.
        images = np.random.default_rng(1).uniform(-1, 1, size=(3, 299, 299, 3)).astype(np.float32)
        features, logits = self.backbone(images)
        expected_features, expected_logits = _numpy_fake_2015(images, *self.params)
        # The graph's float32 conv and mean against float64 NumPy: 1e-4.
        self.assertAllClose(features, expected_features, rtol=1e-4, atol=1e-4)
        self.assertAllClose(logits, expected_logits, rtol=1e-4, atol=1e-4)

    def test_other_sizes_are_resized(self):
        # A constant image stays the same constant under bilinear resizing.
        colours = np.random.default_rng(2).uniform(-1, 1, size=(2, 1, 1, 3)).astype(np.float32)
        images = np.broadcast_to(colours, (2, 32, 48, 3))
        features, logits = self.backbone(images)
        expected_features, expected_logits = _numpy_fake_2015(colours, *self.params)
        self.assertAllClose(features, expected_features, rtol=1e-4, atol=1e-4)
        self.assertAllClose(logits, expected_logits, rtol=1e-4, atol=1e-4)

    def test_reports_itself_as_the_comparable_backbone(self):
        self.assertEqual(self.backbone.name, "fid2015")
        self.assertTrue(self.backbone.comparable)
        self.assertEqual((self.backbone.feature_dim, self.backbone.num_classes),
                         (_WIDTH, _CLASSES))

    def test_a_graph_without_the_tensors_is_refused(self):
        path = os.path.join(self.tmp.name, "other.pb")
        with open(path, "wb") as f:
            f.write(tf.compat.v1.GraphDef().SerializeToString())
        with self.assertRaisesRegex(ValueError, "no node 'ExpandDims'"):
            inception.load_backbone(f"fid2015:{path}")


class KerasTest(_OncePerClass, tf.test.TestCase):

    @classmethod
    def write_weights(cls, folder):
        path = os.path.join(folder, "inception.weights.h5")
        keras.utils.set_random_seed(3)
        cls.reference = keras.applications.InceptionV3(weights=None, include_top=True)
        cls.reference.save_weights(path)
        return f"keras:{path}"

    def test_matches_the_saved_model(self):
        images = np.random.default_rng(4).uniform(-1, 1, size=(2, 299, 299, 3)).astype(np.float32)
        features, logits = self.backbone(images)
        pool = keras.Model(self.reference.input, self.reference.get_layer("avg_pool").output)
        expected_features = pool(images, training=False).numpy()
        # Our graph and Keras' model run other kernels: 1e-4 of the O(1) features.
        self.assertAllClose(features, expected_features, rtol=1e-4, atol=1e-4)
        dense = self.reference.get_layer("predictions")
        self.assertAllClose(
            logits, expected_features @ dense.kernel.numpy() + dense.bias.numpy(),
            rtol=1e-4, atol=1e-4)
        # The logits are the head's input to its softmax.
        probabilities = self.reference(images, training=False).numpy()
        # Probabilities over 1000 classes are ~1e-3: 1e-6 is 1e-3 of that scale.
        self.assertAllClose(scipy.special.softmax(logits.numpy(), axis=1), probabilities,
                            rtol=1e-4, atol=1e-6)
        self.assertEqual((self.backbone.name, self.backbone.comparable), ("keras", False))
        self.assertEqual(logits.shape, (2, 1000))


class RandomAndErrorsTest(tf.test.TestCase):

    def test_random_backbone_is_flagged_and_deterministic(self):
        images = np.random.default_rng(5).uniform(-1, 1, size=(2, 40, 40, 3)).astype(np.float32)
        first, second = inception.load_backbone("random"), inception.load_backbone("random")
        self.assertEqual((first.name, first.comparable), ("random", False))
        features, logits = first(images)
        self.assertEqual(features.shape, (2, first.feature_dim))
        self.assertEqual(logits.shape, (2, first.num_classes))
        for got, again in zip((features, logits), second(images)):
            # The same seeded weights and ops on the same inputs in one process.
            self.assertAllEqual(got, again)
        self.assertGreater(np.abs(features[0] - features[1]).max(), 0.0)

    def test_missing_files_name_the_file_needed(self):
        missing = os.path.join(tempfile.gettempdir(), "no_such_dir", "graph.pb")
        with self.assertRaisesRegex(FileNotFoundError,
                                    f"classify_image_graph_def.pb.*{missing}"):
            inception.load_backbone(f"fid2015:{missing}")
        with self.assertRaisesRegex(FileNotFoundError, "InceptionV3 weights.*weights.h5"):
            inception.load_backbone("keras:/no/such/weights.h5")

    def test_junk_weight_files_name_the_spec_and_what_was_expected(self):
        folder = tempfile.mkdtemp()
        graph, weights = os.path.join(folder, "junk.pb"), os.path.join(folder, "junk.h5")
        for path in (graph, weights):
            with open(path, "wb") as f:
                f.write(b"this is not a graph\x00\xff\xfe" * 10)
        with self.assertRaisesRegex(ValueError, f"'fid2015:{graph}' is not a frozen TensorFlow "
                                                "graph.*classify_image_graph_def.pb"):
            inception.load_backbone(f"fid2015:{graph}")
        with self.assertRaisesRegex(ValueError, f"'keras:{weights}' could not be loaded into "
                                                "keras.applications.InceptionV3.*ImageNet "
                                                "weights.*inception_v3_weights"):
            inception.load_backbone(f"keras:{weights}")

    def test_unknown_specs_are_refused(self):
        for spec in ("inception", "keras", "random:x", "fid2015:"):
            with self.assertRaisesRegex(ValueError, "expected 'fid2015:PATH'"):
                inception.load_backbone(spec)


class SegmenterBackboneTest(tf.test.TestCase):
    """`segmenter:PATH`: the exported segmenter's pooled features, at the images' own size."""

    def test_features_fid_and_errors(self):
        from tfattncut.evaluation import evaluate, segmenter
        from tfattncut.models import segmenter as segmenter_model

        path = os.path.join(tempfile.mkdtemp(), "segmenter")
        model = segmenter_model.build_segmenter(width=4, seed=1)
        segmenter.export_segmenter(model, path)
        backbone = inception.load_backbone(f"segmenter:{path}")
        self.assertEqual((backbone.name, backbone.comparable, backbone.feature_dim,
                          backbone.num_classes),
                         ("segmenter", False, 12, segmenter_model.NUM_CLASSES))
        images = tf.random.stateless_uniform([5, 16, 24, 3], [1, 2], -1.0, 1.0)
        features, logits = backbone(images)
        # Oracle: the spatial mean of what the segmenter's last layer sees, and of its logits
        # (the same Keras layers, so equal up to float32 reduction order).
        hidden = keras.Model(model.inputs, model.layers[-1].input)(images)
        self.assertAllClose(features, tf.reduce_mean(hidden, axis=[1, 2]), atol=1e-5)
        self.assertAllClose(logits, tf.reduce_mean(model(images), axis=[1, 2]), atol=1e-5)
        scores = evaluate.compute_metrics(("fid",), [images], [images], backbone=backbone)
        self.assertAllClose(scores["fid"], 0.0, atol=1e-6)

        with self.assertRaisesRegex(FileNotFoundError, "segmenter:PATH"):
            inception.load_backbone("segmenter:" + os.path.join(tempfile.mkdtemp(), "none"))
