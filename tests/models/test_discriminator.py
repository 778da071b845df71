"""PatchGAN discriminator: parameter count and patch grid."""
import tensorflow as tf
from absl.testing import parameterized

from tfattncut.models.discriminator import PatchDiscriminator


class DiscriminatorTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(False, True)
    def test_count_and_output_at_256(self, no_antialias):
        discriminator = PatchDiscriminator(no_antialias=no_antialias)
        out = discriminator(tf.zeros([1, 256, 256, 3]))
        self.assertEqual(out.shape, (1, 30, 30, 1))
        self.assertEqual(discriminator.count_params(), 2_764_737)

    def test_small_input(self):
        out = PatchDiscriminator(ndf=8)(tf.zeros([2, 64, 64, 3]))
        self.assertEqual(out.shape, (2, 6, 6, 1))
