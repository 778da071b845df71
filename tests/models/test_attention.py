"""The attention network and the attention-guided composition of the UAG baseline."""
import numpy as np
import tensorflow as tf

from tfattncut.models.attention import AttentionNetwork, AttentionTranslator, compose
from tfattncut.models.generator import ResnetGenerator


def saturated_attention(logit):
    """A small attention network whose map is sigmoid(logit) everywhere: the last conv's
    kernel is zeroed and its bias set to `logit`."""
    attention = AttentionNetwork(nf=4)
    attention(tf.zeros([1, 16, 16, 3]))
    last = attention.layer_list[-2]
    last.kernel.assign(tf.zeros_like(last.kernel))
    last.bias.assign(tf.fill(last.bias.shape, logit))
    return attention


class AttentionNetworkTest(tf.test.TestCase):

    def test_parameter_count_and_output(self):
        attention = AttentionNetwork(nf=32)
        mask = attention(tf.random.uniform([2, 32, 48, 3], -1, 1, seed=0))
        self.assertEqual(mask.shape, (2, 32, 48, 1))
        # conv7 3→32 (4,736), conv3 32→64 (18,496), residual block (2 × 36,928),
        # conv3 64→64 (36,928), conv3 64→32 (18,464), conv7 32→1 (1,569).
        self.assertEqual(attention.count_params(), 154_049)
        self.assertAllInRange(mask, 0.0, 1.0)
        self.assertGreater(float(tf.math.reduce_std(mask)), 0.0)


class CompositionTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.generator = ResnetGenerator("resnet_6blocks", ngf=4)
        self.images = tf.random.uniform([2, 16, 16, 3], -1, 1, seed=1)

    def test_mask_zero_keeps_the_input(self):
        translator = AttentionTranslator(self.generator, saturated_attention(-100.0))
        output, mask = translator.translate_with_mask(self.images)
        # sigmoid(−100) ≈ 4e-44 underflows on any kernel, and 1 − it is exactly 1, so the
        # composition returns the input itself: tight bounds.
        self.assertAllClose(mask, tf.zeros([2, 16, 16, 1]), atol=1e-30)
        self.assertAllClose(output, self.images, atol=1e-6)

    def test_mask_one_gives_the_generator_output(self):
        translator = AttentionTranslator(self.generator, saturated_attention(100.0))
        generated = self.generator(self.images)
        # sigmoid(100) is exactly 1 in float32 and the same eager generator runs on the same
        # input: identical, so a tight bound.
        self.assertAllClose(translator(self.images), generated, atol=1e-6)
        self.assertNotAllClose(generated, self.images, atol=1e-2)

    def test_compose_matches_numpy(self):
        rng = np.random.default_rng(2)
        mask = rng.uniform(0, 1, (2, 4, 4, 1)).astype(np.float32)
        translated, source = (rng.uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
                              for _ in range(2))
        # The same float32 formula elementwise: equal to rounding, so the default bound.
        self.assertAllClose(compose(mask, translated, source),
                            mask * translated + (1 - mask) * source)
