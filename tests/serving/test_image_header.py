"""tfattncut.serving.image_header: sizes read from headers equal what the encoder wrote."""
import io

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.serving.servingdata import png_claiming
from tfattncut.serving import image_header


def _encode(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


class DeclaredSizeTest(tf.test.TestCase):

    def test_reads_the_size_of_every_format_the_decoder_takes(self):
        rgba = np.random.default_rng(0).integers(0, 256, (13, 17, 4), dtype=np.uint8)
        rgb = Image.fromarray(rgba[..., :3])
        files = {  # the oracle: Pillow wrote a 13x17 image in each
            "png": _encode(rgb, "PNG"), "jpeg": _encode(rgb, "JPEG"),
            "gif": _encode(rgb, "GIF"), "bmp": _encode(rgb, "BMP"),
            "bmp palette": _encode(rgb.convert("P"), "BMP"),
            "webp lossy (VP8)": _encode(rgb, "WEBP"),
            "webp lossless (VP8L)": _encode(rgb, "WEBP", lossless=True),
            "webp alpha (VP8X)": _encode(Image.fromarray(rgba), "WEBP"),
        }
        self.assertEqual(files["webp alpha (VP8X)"][12:16], b"VP8X")
        for name, contents in files.items():
            with self.subTest(name):
                self.assertAllEqual(image_header.declared_size(tf.constant(contents)), [13, 17])

    def test_non_images_give_zero_and_jpeg_xl_gives_unreadable(self):
        for contents in (b"", b"hello", b"GIF", b"\x89PNG"):
            self.assertAllEqual(image_header.declared_size(tf.constant(contents)), [0, 0])
        for contents in (b"\xff\x0a\x00\x10", b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftyp"):
            size = image_header.declared_size(tf.constant(contents))
            self.assertAllEqual(size, [-1, -1])
            self.assertFalse(image_header.within_limit(size, 100))

    def test_a_huge_claim_is_read_from_a_tiny_file(self):
        contents = png_claiming(20000, 30000)
        self.assertLess(len(contents), 100)
        size = image_header.declared_size(tf.constant(contents))
        self.assertAllEqual(size, [20000, 30000])
        self.assertFalse(image_header.within_limit(size, image_header.DEFAULT_MAX_IMAGE_PIXELS))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    "at most 67108864 pixels"):
            image_header.check_limit(tf.constant(contents), image_header.DEFAULT_MAX_IMAGE_PIXELS)

    def test_limit_boundaries_and_no_overflow(self):
        default = image_header.DEFAULT_MAX_IMAGE_PIXELS
        biggest = image_header.MAX_PIXELS_LIMIT
        cases = [((8192, 8192), default, True), ((8193, 8192), default, False),
                 ((1, biggest), biggest, True), ((biggest, biggest), biggest, False),
                 ((2 ** 32 - 1, 2 ** 32 - 1), biggest, False), ((0, 0), 1, True)]
        for size, limit, want in cases:
            with self.subTest(size=size, limit=limit):
                self.assertEqual(bool(image_header.within_limit(
                    tf.constant(size, tf.int64), limit)), want)
        image_header.check_pixel_limit(biggest)
        for limit in (0, biggest + 1):
            with self.assertRaisesRegex(ValueError, rf"^--max_image_pixels must lie in \[1, "
                                                    rf"{biggest}\]; got {limit}$"):
                image_header.check_pixel_limit(limit)
