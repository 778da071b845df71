"""Paired fidelity (docs/design/metrics.md#paired-fidelity): PSNR and SSIM of a translation
against its ground truth.

Inputs are the library's [-1, 1] images. Both metrics are computed after mapping them to
[0, 1] with a peak value of 1, which gives the same numbers as the usual 8-bit computation
on [0, 255] with peak 255 (minus the rounding to integers). SSIM is not offset-invariant, so
running it on [-1, 1] with a range of 2 would give different, non-comparable values.
SSIM is tf.image.ssim's: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, valid
windows only, averaged over positions and then over channels.
"""
import tensorflow as tf

from tfattncut.pixels import to_unit_range

# The window's side. Smaller images have no valid window and tf.image.ssim fails deep inside
# TensorFlow, so evaluation checks sizes against it first and names the flags to change.
SSIM_WINDOW = 11


def psnr(images, targets):
    """Per-image PSNR in dB: [B] from two [B, H, W, C] batches in [-1, 1]."""
    return tf.image.psnr(to_unit_range(images), to_unit_range(targets), max_val=1.0)


def ssim(images, targets):
    """Per-image SSIM: [B] from two [B, H, W, C] batches in [-1, 1]; H, W >= SSIM_WINDOW."""
    return tf.image.ssim(to_unit_range(images), to_unit_range(targets), max_val=1.0,
                         filter_size=SSIM_WINDOW, filter_sigma=1.5, k1=0.01, k2=0.03)
