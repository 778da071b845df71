"""Image modules, pixel ranges: the one conversion uint8 <-> [-1, 1] <-> [0, 1].

The one conversion between stored pixels and the networks' range.

Networks see float32 images in [-1, 1] (the reference's Normalize(0.5, 0.5)); files, serving
requests and PNGs hold uint8, and TensorBoard and PSNR/SSIM want [0, 1]. Every module converts
through these functions, so the mapping (and its rounding) is written once. Only TensorFlow
is imported, so any module can use it without an import cycle.
"""
import tensorflow as tf


def from_uint8(pixels):
    """uint8 (or integer-valued) [..., C] -> float32 in [-1, 1]."""
    return tf.cast(pixels, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """[..., C] float in [-1, 1] -> uint8, clipped and rounded to the nearest value."""
    return tf.cast(tf.round((tf.clip_by_value(images, -1.0, 1.0) + 1.0) * 127.5), tf.uint8)


def to_unit_range(images):
    """[..., C] in [-1, 1] -> float32 in [0, 1], not clipped (callers that display values
    outside [-1, 1] clip; metrics must not)."""
    return (tf.cast(images, tf.float32) + 1.0) / 2.0


def from_unit_range(values):
    """[..., C] in [0, 1] (e.g. an attention mask) -> float32 in [-1, 1], to_unit_range's
    inverse: what image summaries show."""
    return 2.0 * tf.cast(values, tf.float32) - 1.0
