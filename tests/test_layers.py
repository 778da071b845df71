"""Layers against NumPy re-implementations of the reference's PyTorch operations."""
import numpy as np
import tensorflow as tf

from tfattncut import layers


def numpy_blur_downsample(x):
    """Reference Downsample: reflect pad 1, depthwise 3×3 binomial blur, stride 2."""
    filt = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    b, h, w, c = padded.shape
    out = np.zeros((b, (h - 3) // 2 + 1, (w - 3) // 2 + 1, c))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            window = padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3, :]
            out[:, i, j, :] = np.einsum("bhwc,hw->bc", window, filt)
    return out


def numpy_blur_upsample(x):
    """Reference Upsample: replicate pad 1, conv_transpose (scatter) with the 4×4 filter ×4,
    stride 2, keep [3 : 3 + 2H]."""
    filt = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0 * 4
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="edge")
    b, h, w, c = padded.shape
    full = np.zeros((b, 2 * (h - 1) + 4, 2 * (w - 1) + 4, c))
    for i in range(h):
        for j in range(w):
            full[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4, :] += \
                padded[:, i:i + 1, j:j + 1, :] * filt[None, :, :, None]
    height, width = x.shape[1], x.shape[2]
    return full[:, 3:3 + 2 * height, 3:3 + 2 * width, :]


class BlurTest(tf.test.TestCase):

    def test_filters(self):
        self.assertAllClose(layers.binomial_filter(3), np.outer([1, 2, 1], [1, 2, 1]) / 16)
        self.assertAllClose(layers.binomial_filter(4), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)

    def test_downsample_matches_reference(self):
        x = np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype(np.float32)
        out = layers.BlurDownsample()(x)
        self.assertEqual(out.shape, (2, 4, 3, 3))
        self.assertAllClose(out, numpy_blur_downsample(x), atol=1e-5)

    def test_upsample_matches_reference(self):
        x = np.random.default_rng(1).normal(size=(2, 5, 4, 3)).astype(np.float32)
        out = layers.BlurUpsample()(x)
        self.assertEqual(out.shape, (2, 10, 8, 3))
        self.assertAllClose(out, numpy_blur_upsample(x), atol=1e-5)

    def test_upsample_keeps_constant_images(self):
        out = layers.BlurUpsample()(tf.fill([1, 4, 4, 2], 0.5))
        self.assertAllClose(out, tf.fill([1, 8, 8, 2], 0.5), atol=1e-6)


class NormAndPadTest(tf.test.TestCase):

    def test_instance_norm_matches_numpy(self):
        x = np.random.default_rng(2).normal(3.0, 2.0, size=(2, 5, 7, 4)).astype(np.float32)
        mean = x.mean(axis=(1, 2), keepdims=True)
        var = x.var(axis=(1, 2), keepdims=True)  # biased, as the reference
        expected = (x - mean) / np.sqrt(var + 1e-5)
        norm = layers.instance_norm()
        self.assertAllClose(norm(x), expected, atol=1e-4)
        self.assertEmpty(norm.weights)

    def test_reflection_pad(self):
        x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
        expected = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
        self.assertAllEqual(layers.ReflectionPad(2)(x), expected)

    def test_conv_padding_is_symmetric(self):
        conv = layers.Conv(1, 4, padding=1)
        x = tf.zeros([1, 8, 8, 3])
        self.assertEqual(conv(x).shape, (1, 7, 7, 1))


class InitializerTest(tf.test.TestCase):

    def test_xavier_std_and_untruncated(self):
        shape = (3, 3, 64, 128)
        values = layers.xavier_normal(0.02)(shape).numpy()
        fan_in, fan_out = 64 * 9, 128 * 9
        std = 0.02 * np.sqrt(2.0 / (fan_in + fan_out))
        self.assertAllClose(values.std(), std, rtol=0.02)
        self.assertAllClose(values.mean(), 0.0, atol=std * 0.02)
        # An untruncated normal has about 0.27 % of its mass beyond 3 std.
        self.assertGreater(np.mean(np.abs(values) > 3 * std), 0.001)

    def test_init_types(self):
        for name in layers.INIT_TYPES:
            self.assertIsNotNone(layers.make_initializer(name, 0.02))
        with self.assertRaisesRegex(ValueError, "--init_type"):
            layers.make_initializer("bogus")


class TransposedConvTest(tf.test.TestCase):

    def test_matches_pytorch_conv_transpose(self):
        """ConvTranspose2d(k3, s2, padding 1, output_padding 1) as a NumPy scatter."""
        rng = np.random.default_rng(3)
        x = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
        layer = layers.TransposedConv(5)
        out = layer(x).numpy()
        kernel, bias = layer.get_weights()  # [3, 3, out, in]
        full = np.zeros((1, 2 * 3 + 1 + 1, 2 * 4 + 1 + 1, 5))
        for i in range(3):
            for j in range(4):
                full[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += np.einsum(
                    "c,hwoc->hwo", x[0, i, j], kernel)
        expected = full[:, 1:1 + 6, 1:1 + 8] + bias  # padding 1 at the start; 2H total
        self.assertEqual(out.shape, (1, 6, 8, 5))
        self.assertAllClose(out, expected, atol=1e-5)
