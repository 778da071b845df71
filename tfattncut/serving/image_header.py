"""Image modules, a request's header: the declared size, checked before decoding.

The size an encoded image declares in its header, read without decoding it.

A decoder allocates the whole [H, W, C] image the header announces before it reads a pixel,
so a 400-byte PNG claiming 20000x20000 costs gigabytes (and, through a generator, far more).
Both the exported `translate_encoded` signature and the server read the header first and
refuse an image over the pixel limit; these graph ops serve both, so the two agree.
"""
import tensorflow as tf

# 8192 x 8192: far above any training resolution, far below what exhausts a server's memory.
DEFAULT_MAX_IMAGE_PIXELS = 64 << 20
# The largest limit within_limit handles: a product of two sides up to it stays below 2^62.
MAX_PIXELS_LIMIT = 2 ** 31 - 1
FORMATS = "JPEG, PNG, BMP, GIF or WebP"
_HEAD = 30  # bytes: the farthest field read below ends at byte 29 (WebP VP8X height); the
# longest magic (JPEG XL's container, 12 bytes) fits too


def declared_size(contents):
    """Encoded image bytes (scalar string) -> int64 [2]: (height, width) from its header.

    JPEG, PNG, GIF, BMP and WebP (lossy, lossless and extended) headers are read; bytes of
    no image format give [0, 0] (the decoder then rejects them with its own message); JPEG
    XL, which TensorFlow decodes but whose size hides in a bit-packed header, gives
    [-1, -1] so that callers refuse it. A malformed JPEG header is an InvalidArgumentError.
    """
    padded = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, _HEAD),
                                                b"\0" * _HEAD]), 0, _HEAD)
    head = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)

    def little(offset, width):
        return sum(head[offset + i] * 256 ** i for i in range(width))

    def big(offset, width):
        return sum(head[offset + i] * 256 ** (width - 1 - i) for i in range(width))

    def starts(magic, offset=0):
        return tf.strings.substr(padded, offset, len(magic)) == magic

    def int32(value):  # BMP stores signed sizes; a negative height means top-down rows
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

    webp = starts(b"RIFF") & starts(b"WEBP", 8)
    lossless_bits = little(21, 4)  # 14 bits width - 1, then 14 bits height - 1
    sizes = [  # (is this format, height, width), first match wins
        (starts(b"\x89PNG\r\n\x1a\n"), big(20, 4), big(16, 4)),
        (starts(b"GIF8"), little(8, 2), little(6, 2)),
        (starts(b"BM"), int32(little(22, 4)), int32(little(18, 4))),
        (webp & starts(b"VP8X", 12), little(27, 3) + 1, little(24, 3) + 1),
        (webp & starts(b"VP8L", 12), lossless_bits // 2 ** 14 % 2 ** 14 + 1,
         lossless_bits % 2 ** 14 + 1),
        (webp & starts(b"VP8 ", 12), little(28, 2) % 2 ** 14, little(26, 2) % 2 ** 14),
        (starts(b"\xff\x0a") | starts(b"\0\0\0\x0cJXL \r\n\x87\n"),
         tf.constant(-1, tf.int64), tf.constant(-1, tf.int64)),
    ]
    size = tf.zeros([2], tf.int64)
    for is_format, height, width in reversed(sizes):
        size = tf.where(is_format, tf.stack([height, width]), size)
    return tf.cond(tf.io.is_jpeg(contents),
                   lambda: tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64),
                   lambda: size)


def check_pixel_limit(max_pixels):
    """A ValueError naming --max_image_pixels unless it lies in [1, MAX_PIXELS_LIMIT]."""
    if not 1 <= max_pixels <= MAX_PIXELS_LIMIT:
        raise ValueError(f"--max_image_pixels must lie in [1, {MAX_PIXELS_LIMIT}]; got "
                         f"{max_pixels}")


def within_limit(size, max_pixels):
    """bool: a declared_size is readable and has at most max_pixels (<= MAX_PIXELS_LIMIT)
    pixels. Each side is compared first, so their product cannot overflow int64."""
    height, width = size[0], size[1]
    return ((height >= 0) & (height <= max_pixels) & (width <= max_pixels)
            & (height * width <= max_pixels))


def check_limit(contents, max_pixels):
    """An assertion op for graphs that decode `contents`: fails with an InvalidArgumentError
    naming the limit when the header declares more than max_pixels pixels."""
    size = declared_size(contents)
    return tf.debugging.Assert(within_limit(size, max_pixels), [
        f"an image may have at most {max_pixels} pixels (--max_image_pixels) and must be "
        f"{FORMATS}; this one declares height, width (-1: JPEG XL, not accepted)", size])
