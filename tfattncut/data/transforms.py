"""The views of one image that training and testing see: `--preprocess`'s resize and crop,
the random flip, and sides rounded to multiples of 4 (the reference's __make_power_2).

Every function takes float32 [..., H, W, 3] in [-1, 1] and the run's Config (only its
preprocess, load_size, crop_size and no_flip are read); random draws are stateless, from a
key the caller derives. A training view may carry the image's label map along: one joint
view, so the same crop and flip apply to both, labels resized by nearest neighbour.
"""
import tensorflow as tf

from tfattncut.options import CROPPING_MODES


def _resize(image, size):
    """Bicubic resize of [..., H, W, 3] in [-1, 1] to `size`, clipped back to [-1, 1].

    Antialiased, as PIL's bicubic (the reference) is when shrinking; a resize to the same size
    is the identity.
    """
    resized = tf.image.resize(image, size, method="bicubic", antialias=True)
    return tf.clip_by_value(resized, -1.0, 1.0)


def _resize_view(view, size):
    """A view [..., H, W, 3 + L] resized to `size`: its image by `_resize`, the L label planes
    after it by nearest neighbour, so every label stays a label of the image."""
    if view.shape[-1] == 3:
        return _resize(view, size)
    return tf.concat([_resize(view[..., :3], size),
                      tf.image.resize(view[..., 3:], size, method="nearest")], axis=-1)


def multiple_of_4(size):
    """[2] int32 size rounded to the nearest multiples of 4 (the generator downsamples twice).

    As the reference's __make_power_2: Python's round, so a side halfway between two
    multiples of 4 goes to the one that is a multiple of 8 (18 -> 16, 22 -> 24). Sides of 1
    or 2 pixels, which the reference rounds to 0 and then fails to resize, become 4.
    """
    quarters = tf.round(tf.cast(size, tf.float64) / 4)  # tf.round: half to even, as Python's
    return tf.maximum(tf.cast(quarters, tf.int32) * 4, 4)


def _round_to_multiple_of_4(view):
    """A view [..., H, W, 3 + L] resized (`_resize_view`) to H, W rounded to the nearest
    multiples of 4; statically aligned views (the usual crops) skip the resize op."""
    static = view.shape[-3:-1]
    if static.is_fully_defined() and all(n % 4 == 0 for n in static):
        return view
    return _resize_view(view, multiple_of_4(tf.shape(view)[-3:-1]))


def resized_size(size, config):
    """[2] int32: the size after the resize stage of `config.preprocess`, from size [2].

    scale_width is the reference's __scale_width: width to load_size, height keeping the aspect
    but at least crop_size.
    """
    if config.preprocess == "resize_and_crop":
        return tf.constant([config.load_size, config.load_size])
    if config.preprocess.startswith("scale_width"):
        height = tf.maximum(config.load_size * size[0] // size[1], config.crop_size)
        return tf.stack([height, tf.constant(config.load_size)])
    return size


def train_transform(image, config, key, labels=None):
    """float32 [H, W, 3] in [-1, 1] -> the training view; `key` [2] seeds crop and flip.

    With `labels`, the image's label map (integer [H, W]): (the view, the labels' view
    [h, w] of the same dtype), cut from one joint view. The image's view is then exactly the
    one it gets alone: the crop offset depends on the spatial sizes only, the flip on
    nothing but the key.
    """
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    view = image if labels is None else tf.concat(
        [image, tf.cast(labels[..., tf.newaxis], image.dtype)], axis=-1)
    view = _resize_view(view, resized_size(tf.shape(image)[-3:-1], config))
    if config.preprocess in CROPPING_MODES:
        view = tf.image.stateless_random_crop(
            view, [config.crop_size, config.crop_size, view.shape[-1]], seed=crop_key)
    view = _round_to_multiple_of_4(view)
    if not config.no_flip:
        view = tf.image.stateless_random_flip_left_right(view, seed=flip_key)
    if labels is None:
        return view
    return view[..., :3], tf.cast(view[..., 3], labels.dtype)


def test_transform(image, config):
    """Test-time view of float32 [..., H, W, 3] in [-1, 1]: crop_size² or, for `none`, the
    size rounded to the nearest multiples of 4."""
    if config.preprocess == "none":
        return _round_to_multiple_of_4(image)
    return _resize(image, [config.crop_size, config.crop_size])
