"""tfattncut.serving.validation: TensorProtos must hold what they claim, limits hold on the
decoded size, floats must be finite, encoded images within the pixel limit."""
import io

import grpc
import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from tests.serving.servingdata import png_claiming
from tfattncut.serving import validation


def _signature(dtype, rank=4, name="x"):
    signature = meta_graph_pb2.SignatureDef()
    info = signature.inputs[name]
    info.dtype = dtype.as_datatype_enum
    for _ in range(rank):
        info.tensor_shape.dim.add(size=-1)
    return signature


def _request(**protos):
    request = predict_pb2.PredictRequest()
    for name, proto in protos.items():
        request.inputs[name].CopyFrom(proto)
    return request


def _claiming(dtype, dims, **values):
    """A TensorProto of `dims` holding only the given repeated values."""
    proto = tf.make_tensor_proto(np.zeros([0], dtype.as_numpy_dtype))
    proto.ClearField("tensor_shape")
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    for field, value in values.items():
        getattr(proto, field).extend(value)
    return proto


class RequestArraysTest(tf.test.TestCase):

    def _arrays(self, signature, request, max_message_bytes=1 << 20):
        return validation.request_arrays("sig", signature, request,
                                         validation.RequestLimits(max_message_bytes))

    def test_a_claimed_shape_the_values_do_not_fill_is_invalid(self):
        signature = _signature(tf.uint8)
        cases = [([1, 4800, 4800, 3], {}, r"\[1, 4800, 4800, 3\] \(69120000 values\) but "
                                          r"holds 0"),
                 ([1, 100000, 100000, 3], {}, r"30000000000 values"),
                 ([1, 2, 3, 1], {"int_val": [1] * 5}, "holds 5 values")]
        for dims, values, pattern in cases:
            with self.subTest(dims=dims):
                proto = _claiming(tf.uint8, dims, **values)
                self.assertLess(proto.ByteSize(), 100)
                with self.assertRaisesRegex(validation.ServingError, pattern) as raised:
                    self._arrays(signature, _request(x=proto))
                self.assertEqual(raised.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        proto = tf.make_tensor_proto(np.zeros([1, 2, 2, 3], np.float32))
        proto.tensor_content = proto.tensor_content[:-2]
        with self.assertRaisesRegex(validation.ServingError, "not a whole number"):
            self._arrays(_signature(tf.float32), _request(x=proto))

    def test_the_decoded_size_counts_against_the_message_limit(self):
        # 20,000 int64 zeros: ~20 KB on the wire, 160 KB decoded.
        proto = _claiming(tf.int64, [1, 20000], int64_val=[0] * 20000)
        self.assertLess(proto.ByteSize(), 25_000)
        with self.assertRaisesRegex(validation.ServingError, "more than 100000 bytes") as raised:
            self._arrays(_signature(tf.int64, rank=2), _request(x=proto), 100_000)
        self.assertEqual(raised.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        arrays = self._arrays(_signature(tf.int64, rank=2), _request(x=proto), 200_000)
        self.assertAllEqual(arrays["x"], np.zeros([1, 20000], np.int64))

    def test_each_string_counts_more_than_its_bytes(self):
        # 2,000 empty strings: 4 KB on the wire, 2,000 Python objects once decoded.
        proto = tf.make_tensor_proto(np.array([b""] * 2000, dtype=object))
        self.assertLess(proto.ByteSize(), 5_000)
        with self.assertRaisesRegex(validation.ServingError, "more than 100000 bytes"):
            self._arrays(_signature(tf.string, rank=1), _request(x=proto), 100_000)
        self.assertLen(self._arrays(_signature(tf.string, rank=1), _request(x=proto),
                                    2000 * validation.STRING_OVERHEAD_BYTES)["x"], 2000)

    def test_protos_that_hold_what_they_claim_decode(self):
        pixels = np.arange(24, dtype=np.uint8).reshape([1, 2, 4, 3])
        arrays = self._arrays(_signature(tf.uint8), _request(x=tf.make_tensor_proto(pixels)))
        self.assertAllEqual(arrays["x"], pixels)
        strings = np.array([b"ab", b"cde"], dtype=object)
        arrays = self._arrays(_signature(tf.string, rank=1),
                              _request(x=tf.make_tensor_proto(strings)))
        self.assertEqual(list(arrays["x"]), [b"ab", b"cde"])


class CheckInputsTest(tf.test.TestCase):

    def _check(self, signature, value, max_image_pixels=1000):
        validation.check_inputs("sig", signature, {"x": value},
                                validation.RequestLimits(max_image_pixels=max_image_pixels))

    def test_nan_and_inf_are_refused_naming_the_input(self):
        for bad in (np.nan, np.inf, -np.inf):
            images = np.zeros([1, 5, 5, 3], np.float32)
            images[0, 1, 2, 0] = bad
            with self.assertRaisesRegex(validation.ServingError,
                                        "input 'x' holds 1 NaN or infinite") as raised:
                self._check(_signature(tf.float32), images)
            self.assertEqual(raised.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self._check(_signature(tf.float32), np.full([1, 5, 5, 3], -1.0, np.float32))

    def test_encoded_images_over_the_pixel_limit_are_refused_before_decoding(self):
        buffer = io.BytesIO()
        Image.new("RGB", (40, 25)).save(buffer, "PNG")
        signature = _signature(tf.string, rank=1)
        small = np.array([buffer.getvalue()], dtype=object)
        self._check(signature, small, max_image_pixels=1000)
        with self.assertRaisesRegex(validation.ServingError,
                                    r"'x'\[0\] declares a 25x40 image \(1000 pixels\); the "
                                    r"limit is 999 pixels \(--max_image_pixels\)") as raised:
            self._check(signature, small, max_image_pixels=999)
        self.assertEqual(raised.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        huge = np.array([b"not an image", png_claiming(20000, 20000)], dtype=object)
        with self.assertRaisesRegex(validation.ServingError, r"'x'\[1\] declares a "
                                                             r"20000x20000 image"):
            self._check(signature, huge, max_image_pixels=1 << 26)
        with self.assertRaisesRegex(validation.ServingError, "JPEG XL"):
            self._check(signature, np.array([b"\xff\x0a\x00"], dtype=object))

    def test_limits_out_of_range_name_the_flag(self):
        with self.assertRaisesRegex(ValueError, "--max_image_pixels"):
            validation.RequestLimits(max_image_pixels=2 ** 31)
