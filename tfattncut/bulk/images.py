"""Image modules, a bulk job's bytes: untrusted file bytes <-> pixels, in Beam workers.

One input file's bytes -> the uint8 pixels the model is given, or why it cannot be; and a
translation's pixels -> the output file's bytes.

The checks and the decoder are the server's: the header's declared size against
--max_image_pixels before anything is decoded (a 70-byte PNG may claim 20000x20000 pixels),
then `decode_image`, the decoder of the exported `translate_encoded` signature (JPEG, PNG,
BMP, GIF), then the generator's smallest size. So a bulk job translates exactly the pixels a
server would, and refuses exactly what it would refuse.
"""
import tensorflow as tf

from tfattncut.data.image_files import decode_failure, decode_image
from tfattncut.inference import MIN_SIDE
from tfattncut.serving import image_header

FORMATS = ("png", "jpg")
DEFAULT_QUALITY = 95  # --format=jpg's JPEG quality


class Unusable(ValueError):
    """An input that cannot be translated; the message says why (it goes to _failed.jsonl)."""


def _undecodable(error):
    return Unusable(f"cannot be decoded as {image_header.FORMATS}: {decode_failure(error)}")


def decode(contents, max_image_pixels):
    """Encoded bytes -> uint8 ndarray [H, W, 3] with H, W >= MIN_SIDE; Unusable otherwise."""
    contents = tf.constant(contents, tf.string)
    try:
        size = image_header.declared_size(contents).numpy()
    except tf.errors.InvalidArgumentError as error:  # a malformed JPEG header
        raise _undecodable(error) from None
    if not image_header.within_limit(size, max_image_pixels):
        raise Unusable(f"declares {size[0]}x{size[1]} pixels (height x width; -1: JPEG XL, not "
                       f"accepted), over --max_image_pixels={max_image_pixels}")
    try:
        pixels = decode_image(contents).numpy()
    except tf.errors.OpError as error:
        raise _undecodable(error) from None
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise Unusable(f"is {height}x{width} pixels (height x width); translating needs at "
                       f"least {MIN_SIDE}x{MIN_SIDE}")
    return pixels


def encode(pixels, image_format="png", quality=DEFAULT_QUALITY):
    """uint8 [H, W, 3] -> PNG bytes (as the server's and launch.translate's), or JPEG bytes
    of the given quality (1-100)."""
    if image_format == "png":
        return tf.io.encode_png(pixels).numpy()
    if image_format == "jpg":
        return tf.io.encode_jpeg(pixels, quality=quality).numpy()
    raise ValueError(f"--format={image_format!r}: expected one of {', '.join(FORMATS)}")
