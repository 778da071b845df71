"""The views of one image that training and testing see: `--preprocess`'s resize and crop,
the random flip, and sides rounded to multiples of 4 (the reference's __make_power_2).

Every function takes float32 [..., H, W, 3] in [-1, 1] and the run's Config (only its
preprocess, load_size, crop_size and no_flip are read); random draws are stateless, from a
key the caller derives.
"""
import tensorflow as tf

# The --preprocess modes that end in a crop_size² crop.
CROPPING_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")


def _resize(image, size):
    """Bicubic resize of [..., H, W, 3] in [-1, 1] to `size`, clipped back to [-1, 1].

    Antialiased, as PIL's bicubic (the reference) is when shrinking; a resize to the same size
    is the identity.
    """
    resized = tf.image.resize(image, size, method="bicubic", antialias=True)
    return tf.clip_by_value(resized, -1.0, 1.0)


def multiple_of_4(size):
    """[2] int32 size rounded to the nearest multiples of 4 (the generator downsamples twice).

    As the reference's __make_power_2: Python's round, so a side halfway between two
    multiples of 4 goes to the one that is a multiple of 8 (18 -> 16, 22 -> 24). Sides of 1
    or 2 pixels, which the reference rounds to 0 and then fails to resize, become 4.
    """
    quarters = tf.round(tf.cast(size, tf.float64) / 4)  # tf.round: half to even, as Python's
    return tf.maximum(tf.cast(quarters, tf.int32) * 4, 4)


def _round_to_multiple_of_4(image):
    """[..., H, W, 3] resized (bicubic) to H, W rounded to the nearest multiples of 4;
    statically aligned images (the usual crops) skip the resize op."""
    static = image.shape[-3:-1]
    if static.is_fully_defined() and all(n % 4 == 0 for n in static):
        return image
    return _resize(image, multiple_of_4(tf.shape(image)[-3:-1]))


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


def train_transform(image, config, key):
    """float32 [H, W, 3] in [-1, 1] -> the training view; `key` [2] seeds crop and flip."""
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    image = _resize(image, resized_size(tf.shape(image)[-3:-1], config))
    if config.preprocess in CROPPING_MODES:
        image = tf.image.stateless_random_crop(
            image, [config.crop_size, config.crop_size, 3], seed=crop_key)
    image = _round_to_multiple_of_4(image)
    if not config.no_flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_key)
    return image


def test_transform(image, config):
    """Test-time view of float32 [..., H, W, 3] in [-1, 1]: crop_size² or, for `none`, the
    size rounded to the nearest multiples of 4."""
    if config.preprocess == "none":
        return _round_to_multiple_of_4(image)
    return _resize(image, [config.crop_size, config.crop_size])
