"""Generator: parameter counts, layer numbering, encode-only path."""
import tensorflow as tf
from absl.testing import parameterized

from tfattncut.models.generator import ResnetGenerator


class GeneratorTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(("resnet_9blocks", 11_378_179), ("resnet_6blocks", 7_837_699))
    def test_parameter_counts(self, net, count):
        generator = ResnetGenerator(net)
        generator(tf.zeros([1, 16, 16, 3]))
        self.assertEqual(generator.count_params(), count)

    def test_output_shape_and_range(self):
        generator = ResnetGenerator(ngf=8)
        out = generator(tf.random.uniform([2, 64, 64, 3], -1, 1))
        self.assertEqual(out.shape, (2, 64, 64, 3))
        self.assertAllInRange(out, -1.0, 1.0)

    def test_nce_feature_shapes_at_256(self):
        shapes = ResnetGenerator().feature_shapes((0, 4, 8, 12, 16), 256)
        self.assertEqual(shapes, [[262, 262, 3], [256, 256, 128], [128, 128, 256],
                                  [64, 64, 256], [64, 64, 256]])

    def test_features_are_the_numbered_layer_outputs(self):
        generator = ResnetGenerator(ngf=4)
        x = tf.random.uniform([1, 32, 32, 3], -1, 1)
        fake, features = generator.call_with_features(x, (0, 4, 12))
        # Every comparison here runs the same eager layers on the same input: identical, so
        # the default (tight) bounds.
        self.assertAllClose(fake, generator(x))
        # Layer 0 is the reflect-padded input; layer 4 the conv before its instance norm.
        self.assertAllClose(features[0], tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]], "REFLECT"))
        manual = x
        for layer in generator.layer_list[:5]:
            manual = layer(manual)
        self.assertAllClose(features[1], manual)
        for got, want in zip(generator.encode(x, (0, 4, 12)), features):
            self.assertAllClose(got, want)

    def test_encode_stops_after_last_layer(self):
        generator = ResnetGenerator(ngf=4)
        x = tf.zeros([1, 32, 32, 3])
        generator(x)
        graph = tf.function(lambda t: generator.encode(t, (0, 4))).get_concrete_function(
            tf.TensorSpec([1, 32, 32, 3])).graph
        conv_ops = [op for op in graph.get_operations() if op.type == "Conv2D"]
        self.assertLen(conv_ops, 2)  # layers 1 and 4 only

    def test_no_antialias_numbering(self):
        generator = ResnetGenerator(ngf=4, no_antialias=True, no_antialias_up=True)
        out = generator(tf.zeros([1, 32, 32, 3]))
        self.assertEqual(out.shape, (1, 32, 32, 3))
        self.assertEqual(generator.layer_list[10].name.startswith("resnet_block"), True)
        reference = ResnetGenerator(ngf=4)
        reference(tf.zeros([1, 32, 32, 3]))
        self.assertEqual(generator.count_params(), reference.count_params())

    def test_unknown_net_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "--netG"):
            ResnetGenerator("unet_256")
