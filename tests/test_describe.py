"""The describe report: parameter counts and NCE feature shapes."""
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.describe import describe


def conv(kernel, channels_in, channels_out):
    """Weights and biases of a k×k convolution (or, with kernel 1, a dense layer)."""
    return kernel * kernel * channels_in * channels_out + channels_out


def bam(channels, reduction=16):
    """BAM's gates without its BatchNorms: channel C→C/r→C, spatial 1×1, two 3×3, 1×1→1."""
    hidden = channels // reduction
    return (conv(1, channels, hidden) + conv(1, hidden, channels)
            + conv(1, channels, hidden) + 2 * conv(3, hidden, hidden) + conv(1, hidden, 1))


class DescribeTest(tf.test.TestCase):

    def test_describe_reports_counts_and_shapes(self):
        report = describe(tiny_config("/unused", selector="bam", ngf=16))
        self.assertEqual(report["nce_features"]["16"], [16, 16, 64])
        self.assertEqual(report["nce_features"]["0"], [70, 70, 3])
        # Oracle: the reference architectures counted by hand (instance norms have no
        # weights). resnet_6blocks, ngf 16: conv7 3→16, convs 16→32→64, 6 blocks of two
        # 64→64 convs, convs 64→32→16, conv7 16→3.
        generator = (conv(7, 3, 16) + conv(3, 16, 32) + conv(3, 32, 64)
                     + 12 * conv(3, 64, 64) + conv(3, 64, 32) + conv(3, 32, 16) + conv(7, 16, 3))
        # PatchGAN, ndf 4, 3 layers: 4×4 convs 3→4→8→16→32→1.
        discriminator = (conv(4, 3, 4) + conv(4, 4, 8) + conv(4, 8, 16) + conv(4, 16, 32)
                         + conv(4, 32, 1))
        # F: per NCE layer (channels 3, 32, 64, 64, 64) a head C→16→16; BAM on the last two.
        projector = (sum(conv(1, c, 16) + conv(1, 16, 16) for c in (3, 32, 64, 64, 64))
                     + 2 * bam(64))
        self.assertEqual(report["parameters"], {
            "generator": generator, "discriminator": discriminator, "projector": projector,
            "total": generator + discriminator + projector,
            "selectors_in_projector": {"select_3": bam(64), "select_4": bam(64)}})
        self.assertEqual(report["parameters"]["total"], 512954)  # the sums above, worked out

    def test_a_mixed_precision_configuration_is_described_as_it_trains(self):
        # Built under the policy as training builds it: the same weights, counted alike.
        plain = describe(tiny_config("/unused"))
        mixed = describe(tiny_config("/unused", mixed_precision="mixed_bfloat16"))
        self.assertEqual(mixed["parameters"], plain["parameters"])
