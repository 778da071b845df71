"""tfattncut.bulk.images: the server's checks and decoder, PNG and JPEG encoding."""
import numpy as np
import tensorflow as tf

from tests.serving.servingdata import png_claiming
from tfattncut.bulk import images


class DecodeTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.pixels = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)

    def test_decodes_png_to_its_pixels(self):
        self.assertAllEqual(images.decode(tf.io.encode_png(self.pixels).numpy(), 100),
                            self.pixels)

    def test_refuses_over_the_pixel_limit_from_the_header(self):
        with self.assertRaisesRegex(images.Unusable, r"declares 6x9 pixels .* over "
                                                     r"--max_image_pixels=53"):
            images.decode(tf.io.encode_png(self.pixels).numpy(), 53)
        with self.assertRaisesRegex(images.Unusable, "declares 20000x30000 pixels"):
            images.decode(png_claiming(20000, 30000), 1 << 26)

    def test_refuses_images_smaller_than_the_generator_takes(self):
        with self.assertRaisesRegex(images.Unusable, r"is 4x9 pixels .* at least 5x5"):
            images.decode(tf.io.encode_png(self.pixels[:4]).numpy(), 100)

    def test_undecodable_bytes_give_the_decoder_message_alone(self):
        with self.assertRaises(images.Unusable) as caught:
            images.decode(b"", 100)
        self.assertEqual(str(caught.exception),
                         "cannot be decoded as JPEG, PNG, BMP, GIF or WebP: Input is empty.")


class EncodeTest(tf.test.TestCase):

    def test_png_is_lossless_and_jpeg_quality_applies(self):
        pixels = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
        self.assertAllEqual(tf.io.decode_png(images.encode(pixels)), pixels)
        low, high = (images.encode(pixels, "jpg", q) for q in (10, 95))
        self.assertTrue(low.startswith(b"\xff\xd8"))
        self.assertLess(len(low), len(high))
        with self.assertRaisesRegex(ValueError, "--format='webp'"):
            images.encode(pixels, "webp")
