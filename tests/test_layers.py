"""Layers against NumPy re-implementations of the reference's PyTorch operations."""
import keras
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


def numpy_conv(padded, kernel, bias, stride=1):
    """Valid cross-correlation of an already padded [B, H, W, C] with a [k, k, C, O] kernel."""
    k = kernel.shape[0]
    b, h, w, _ = padded.shape
    out = np.zeros((b, (h - k) // stride + 1, (w - k) // stride + 1, kernel.shape[-1]))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            window = padded[:, stride * i:stride * i + k, stride * j:stride * j + k, :]
            out[:, i, j, :] = np.einsum("bhwc,hwco->bo", window, kernel)
    return out + bias


class BlurTest(tf.test.TestCase):

    def test_filters(self):
        # Tight: both are the same dyadic numbers, exact in float32.
        self.assertAllClose(layers.binomial_filter(), np.outer([1, 2, 1], [1, 2, 1]) / 16)

    def test_downsample_matches_reference(self):
        x = np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype(np.float32)
        out = layers.BlurDownsample()(x)
        self.assertEqual(out.shape, (2, 4, 3, 3))
        # float32 depthwise conv against float64 NumPy sums, on O(1) values.
        self.assertAllClose(out, numpy_blur_downsample(x), rtol=1e-4, atol=1e-4)

    def test_upsample_matches_reference(self):
        x = np.random.default_rng(1).normal(size=(2, 5, 4, 3)).astype(np.float32)
        out = layers.BlurUpsample()(x)
        self.assertEqual(out.shape, (2, 10, 8, 3))
        # float32 weighted neighbours against a float64 NumPy scatter, on O(1) values.
        self.assertAllClose(out, numpy_blur_upsample(x), rtol=1e-4, atol=1e-4)

    def test_upsample_keeps_constant_images(self):
        out = layers.BlurUpsample()(tf.fill([1, 4, 4, 2], 0.5))
        # Tight: 0.5 times dyadic filter weights (k/16) sums exactly in any order.
        self.assertAllClose(out, tf.fill([1, 8, 8, 2], 0.5), atol=1e-6)


class NormAndPadTest(tf.test.TestCase):

    def test_instance_norm_matches_numpy(self):
        x = np.random.default_rng(2).normal(3.0, 2.0, size=(2, 5, 7, 4)).astype(np.float32)
        mean = x.mean(axis=(1, 2), keepdims=True)
        var = x.var(axis=(1, 2), keepdims=True)  # biased, as the reference
        expected = (x - mean) / np.sqrt(var + 1e-5)
        norm = layers.instance_norm()
        # float32 moments in Keras' order against float64 NumPy, outputs of O(1).
        self.assertAllClose(norm(x), expected, rtol=1e-4, atol=1e-4)
        self.assertEmpty(norm.weights)

    def test_reflection_pad(self):
        x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
        expected = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
        self.assertAllEqual(layers.ReflectionPad(2)(x), expected)  # copies: exact

    def _random_conv(self, conv, x, seed):
        """Builds `conv` on x and gives it random O(1) weights (the initialiser's 0.02 scale
        would hide padding errors under the tolerance)."""
        conv.build(x.shape)
        rng = np.random.default_rng(seed)
        conv.set_weights([rng.normal(size=w.shape).astype(np.float32)
                          for w in conv.get_weights()])
        kernel, bias = conv.get_weights()
        return kernel.astype(np.float64), bias.astype(np.float64)

    def test_conv_padding_is_symmetric_zeros(self):
        """The discriminator's 4×4 convs: zero padding 1 on every side (PyTorch's
        padding=1), where 'same' would pad 1 before and 2 after."""
        x = np.random.default_rng(4).normal(size=(2, 8, 7, 3)).astype(np.float32)
        for stride in (1, 2):
            conv = layers.Conv(5, 4, stride=stride, padding=1)
            kernel, bias = self._random_conv(conv, x, stride)
            padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="constant")
            expected = numpy_conv(padded, kernel, bias, stride)
            self.assertEqual(conv(x).shape, expected.shape)
            # float32 sums of 48 O(1) products in oneDNN's order against float64 NumPy.
            self.assertAllClose(conv(x), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

    def test_reflection_pad_then_conv_matches_numpy_reflect(self):
        """The generator's convs: ReflectionPad(p) then an unpadded conv is numpy.pad
        mode='reflect' (PyTorch's ReflectionPad2d) then a valid conv."""
        x = np.random.default_rng(5).normal(size=(1, 6, 9, 2)).astype(np.float32)
        for pad, size in ((1, 3), (3, 7)):
            conv = layers.Conv(4, size)
            padded = layers.ReflectionPad(pad)(x)
            kernel, bias = self._random_conv(conv, padded, pad)
            expected = numpy_conv(np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)],
                                         mode="reflect").astype(np.float64), kernel, bias)
            self.assertEqual(conv(padded).shape, (1, 6, 9, 4))
            # float32 oneDNN sums of up to 98 products against float64 NumPy.
            self.assertAllClose(conv(padded), expected, rtol=1e-4,
                                atol=1e-4 * np.abs(expected).max())


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

    def test_init_types_draw_the_references_distributions(self):
        """Each --init_type against the reference's init_weights: the std of N(0, std²) by its
        formula for a [3, 3, 64, 128] kernel (PyTorch's fans: channels × kernel area), or
        for orthogonal, gain × orthonormal filters."""
        keras.utils.set_random_seed(0)
        shape, gain = (3, 3, 64, 128), 0.05
        fan_in, fan_out = 9 * 64, 9 * 128
        stds = {"xavier": gain * np.sqrt(2.0 / (fan_in + fan_out)),  # xavier_normal_(gain)
                "normal": gain,  # normal_(0, gain)
                "kaiming": np.sqrt(2.0 / fan_in)}  # kaiming_normal_(a=0, fan_in): no gain
        self.assertCountEqual(list(stds) + ["orthogonal"], layers.INIT_TYPES)
        for name, std in stds.items():
            initializer = layers.make_initializer(name, gain)
            values = initializer(shape).numpy()
            # 73,728 draws: the sample std is within 0.3 % (1 sigma) of the true one.
            self.assertAllClose(values.std(), std, rtol=0.02, msg=name)
            self.assertAllClose(values.mean(), 0.0, atol=std * 0.02, msg=name)
            self.assertGreater(np.mean(np.abs(values) > 3 * std), 0.001, name)  # untruncated
            self.assertNotAllClose(initializer(shape), values, msg=name)  # fresh per variable
        # orthogonal_(gain): PyTorch flattens [O, C, k, k] to O rows of C·k·k and makes them
        # orthogonal; here the O columns of the [k·k·C, O] kernel: the same filters.
        for shape in ((3, 3, 64, 128), (1, 1, 8, 32)):  # fewer, then more filters than taps
            flat = layers.make_initializer("orthogonal", gain)(shape).numpy().reshape(-1, shape[-1])
            gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
            # float32 QR and products: orthonormal to ~1e-6 of gain².
            self.assertAllClose(gram / gain**2, np.eye(len(gram)), atol=1e-4, msg=str(shape))
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
        # float32 against float64 sums; outputs are ~1e-2 (xavier, gain 0.02): 1e-3 relative.
        self.assertAllClose(out, expected, atol=1e-5)
