"""What a request may hold before it reaches a model. Each check raises a ServingError whose
gRPC status code and message tell the client what to fix, naming the input.

The limits (RequestLimits) guard the server's memory, not only the wire: a TensorProto's
claimed shape must match the values it carries and its decoded size counts against the
message limit (else a 42-byte proto claims gigabytes of zeros), and an image's pixels, from
a pixel tensor's shape or an encoded image's header, are counted before anything decodes or
runs it. Names that clients send (models, signatures, inputs) are quoted cut short
(`quoted`): a megabyte of name must not make the error unreadable.
"""
import dataclasses
import math

import grpc
import numpy as np
import tensorflow as tf

from tfattncut.serving import image_header

DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
# 4096 x 4096 per image: the tests' tiny generator peaks at about 70 bytes a pixel (1.1 GiB
# here), the study's CUT generator at about 1 KiB (16 GiB). image_header's larger default
# guards what a decoder allocates, in exports and bulk jobs; --max_image_pixels raises this.
SERVER_MAX_IMAGE_PIXELS = 1 << 24
# Names and values from a request are quoted up to this many characters in errors.
MAX_QUOTED_CHARS = 200
_INT_VAL_TYPES = ("int8", "int16", "int32", "uint8", "uint16")
# What a string value takes decoded beyond its bytes: a Python bytes object's header and its
# slot in an object array (41 bytes), rounded up. Without it, a message of empty strings (2
# bytes each on the wire) would count as nothing and decode to gigabytes of objects.
STRING_OVERHEAD_BYTES = 64


class ServingError(Exception):
    """A request the server refuses: a gRPC status code and a message for the client, and
    the REST status where the code's usual one (rest_api.HTTP_STATUS) does not fit."""

    def __init__(self, code, message, http_status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def quoted(value):
    """repr(value), cut to MAX_QUOTED_CHARS characters (the full length said)."""
    text = repr(value)
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return f"{text[:MAX_QUOTED_CHARS]}... ({len(text)} characters)"


def quoted_list(values, most=10):
    """A sorted list of names for an error: each `quoted`, at most `most` of them."""
    values = sorted(values)
    shown = ", ".join(quoted(value) for value in values[:most])
    return f"[{shown}{f', ... ({len(values)} in all)' if len(values) > most else ''}]"


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message):
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def exhausted(message):
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def shape_text(shape):
    return "[" + ", ".join("?" if d is None or d < 0 else str(d) for d in shape) + "]"


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """The server's --max_message_mb (in bytes) and --max_image_pixels."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_image_pixels: int = SERVER_MAX_IMAGE_PIXELS

    def __post_init__(self):
        image_header.check_pixel_limit(self.max_image_pixels)


# The TensorProto field that holds each dtype's values when tensor_content is empty, and how
# many entries one element takes there (complex numbers are stored as pairs).
_VALUE_FIELDS = {
    tf.float16: ("half_val", 1), tf.bfloat16: ("half_val", 1), tf.float32: ("float_val", 1),
    tf.float64: ("double_val", 1), tf.int8: ("int_val", 1), tf.int16: ("int_val", 1),
    tf.int32: ("int_val", 1), tf.uint8: ("int_val", 1), tf.uint16: ("int_val", 1),
    tf.int64: ("int64_val", 1), tf.uint32: ("uint32_val", 1), tf.uint64: ("uint64_val", 1),
    tf.bool: ("bool_val", 1), tf.complex64: ("scomplex_val", 2),
    tf.complex128: ("dcomplex_val", 2), tf.string: ("string_val", 1),
}


def dtype_name(enum):
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"dtype enum {enum}"


def _decoded_bytes(name, proto):
    """The bytes a TensorProto expands to; INVALID_ARGUMENT unless it holds exactly as many
    values as its tensor_shape claims (TF itself would pad a short proto with copies of its
    last value, or with zeros when it holds none)."""
    if proto.tensor_shape.unknown_rank:
        raise invalid(f"input {quoted(name)} does not give its shape (tensor_shape.unknown_rank)")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise invalid(f"input {quoted(name)} claims shape {dims}; sizes must be >= 0")
    count = math.prod(dims)
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise invalid(f"input {quoted(name)} has an unknown {dtype_name(proto.dtype)}") from None
    if dtype != tf.string and proto.tensor_content:
        held, extra = divmod(len(proto.tensor_content), dtype.size)
        if extra:
            raise invalid(f"input {quoted(name)}: tensor_content of "
                          f"{len(proto.tensor_content)} bytes is not a whole number of "
                          f"{dtype.name} values")
    elif dtype in _VALUE_FIELDS:
        field, per_value = _VALUE_FIELDS[dtype]
        held = len(getattr(proto, field)) // per_value
    else:
        raise invalid(f"input {quoted(name)}: send {dtype.name} values in tensor_content")
    if held != count:
        raise invalid(f"input {quoted(name)} claims shape {shape_text(dims)} ({count} values) "
                      f"but holds {held} values")
    if dtype.name in _INT_VAL_TYPES and proto.int_val:
        low, high = min(proto.int_val), max(proto.int_val)
        if low < dtype.min or high > dtype.max:
            raise invalid(f"input {quoted(name)} is {dtype.name}: values must lie in "
                          f"[{dtype.min}, {dtype.max}]; int_val holds [{low}, {high}]")
    if dtype == tf.string:
        return string_bytes(proto.string_val)
    return count * dtype.size


def string_bytes(values):
    """The memory string `values` take decoded: their lengths and STRING_OVERHEAD_BYTES each."""
    return sum(len(value) + STRING_OVERHEAD_BYTES for value in values)


def request_arrays(signature_name, signature_def, request, limits):
    """The request's TensorProtos as ndarrays: dtypes checked against the SignatureDef, each
    proto's shape against its content, the decoded total against the message limit and a
    pixel tensor's images against the pixel limit, all before anything is copied."""
    arrays, total = {}, 0
    for name, proto in request.inputs.items():
        info = signature_def.inputs.get(name)
        if info is not None and proto.dtype != info.dtype:
            raise invalid(f"input {quoted(name)} of signature {quoted(signature_name)} must be "
                          f"{dtype_name(info.dtype)}; got {dtype_name(proto.dtype)}")
        total += _decoded_bytes(name, proto)
        if total > limits.max_message_bytes:
            raise exhausted(f"the request's inputs decode to more than "
                            f"{limits.max_message_bytes} bytes (--max_message_mb)")
        if proto.dtype != tf.string.as_datatype_enum:
            _tensor_pixels(name, [d.size for d in proto.tensor_shape.dim], limits)
        try:
            arrays[name] = tf.make_ndarray(proto)
        except (ValueError, TypeError, OverflowError) as error:
            raise invalid(f"input {quoted(name)} is not a valid TensorProto: {error}") from None
    return arrays


def check_inputs(signature_name, signature_def, inputs, limits):
    """inputs {name: ndarray}: keys, ranks, fixed dims and non-emptiness as the SignatureDef
    demands, finite floats, and images within the pixel limit. Returns the inputs' pixels: of
    each image in a [B, H, W, C] tensor and each encoded image (from its header), as
    `Servable.cost` counts them."""
    expected = signature_def.inputs
    missing = sorted(set(expected) - set(inputs))
    extra = sorted(set(inputs) - set(expected))
    if missing or extra:
        raise invalid(f"signature {quoted(signature_name)} takes inputs "
                      f"{quoted_list(expected)}; the request is missing {quoted_list(missing)} "
                      f"and has unexpected {quoted_list(extra)}")
    pixels = 0
    for name, value in inputs.items():
        if not expected[name].tensor_shape.unknown_rank:
            dims = [d.size for d in expected[name].tensor_shape.dim]
            if value.ndim != len(dims) or any(d >= 0 and d != n
                                              for d, n in zip(dims, value.shape)):
                raise invalid(f"input {quoted(name)} of signature {quoted(signature_name)} "
                              f"must have shape {shape_text(dims)}; got "
                              f"{shape_text(value.shape)}")
        if value.size == 0:
            raise invalid(f"input {quoted(name)} is empty (shape {shape_text(value.shape)})")
        dtype = tf.dtypes.as_dtype(expected[name].dtype)
        if dtype.is_floating:
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                raise invalid(f"input {quoted(name)} holds {bad} NaN or infinite value(s); "
                              "send finite numbers")
        if dtype == tf.string:
            pixels += _encoded_pixels(name, value, limits.max_image_pixels)
        else:
            pixels += _tensor_pixels(name, value.shape, limits)
    if len({value.shape[0] for value in inputs.values() if value.ndim}) > 1:
        raise invalid("all inputs must have the same batch size")
    return pixels


def _tensor_pixels(name, dims, limits):
    """B x H x W of a [B, H, W, C] tensor (0 for other ranks: not images); RESOURCE_EXHAUSTED
    when one image has more than the pixel limit."""
    if len(dims) != 4:
        return 0
    batch, height, width, _ = (int(n) for n in dims)
    if height * width > limits.max_image_pixels:
        raise exhausted(f"input {quoted(name)} holds {height}x{width} images ({height * width} "
                        f"pixels each); the limit is {limits.max_image_pixels} pixels "
                        "(--max_image_pixels)")
    return batch * height * width


_declared_size = tf.function(image_header.declared_size,
                             input_signature=[tf.TensorSpec([], tf.string)])


def _encoded_pixels(name, value, max_pixels):
    """The pixels that the image headers of a string tensor declare, in all; refuses one over
    max_pixels (or a JPEG XL, whose size is not read) before anything decodes it. Strings of
    no image format count 0 (the decoder refuses them)."""
    pixels = 0
    for index, contents in np.ndenumerate(value):
        where = f"input {quoted(name)}{list(index)}"
        try:
            size = _declared_size(contents)
        except tf.errors.InvalidArgumentError as error:
            raise invalid(f"{where} is not a readable image: {error.message}") from None
        height, width = (int(n) for n in size)
        if image_header.within_limit(size, max_pixels):
            pixels += height * width
            continue
        if height < 0:
            raise invalid(f"{where} is a JPEG XL image, whose size cannot be checked before "
                          f"decoding; send {image_header.FORMATS}")
        raise exhausted(f"{where} declares a {height}x{width} image ({height * width} "
                        f"pixels); the limit is {max_pixels} pixels (--max_image_pixels)")
    return pixels
