"""What a request may hold before it reaches a model. Each check raises a ServingError whose
gRPC status code and message tell the client what to fix, naming the input.

The limits (RequestLimits) guard the server's memory, not only the wire: a TensorProto's
claimed shape must match the values it carries and its decoded size counts against the
message limit (else a 42-byte proto claims gigabytes of zeros), and an encoded image's pixels
are counted from its header before anything decodes it.
"""
import dataclasses
import math

import grpc
import numpy as np
import tensorflow as tf

from tfattncut.serving import image_header

DEFAULT_MAX_MESSAGE_BYTES = 256 << 20


class ServingError(Exception):
    """A request the server refuses: a gRPC status code and a message for the client."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


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
    max_image_pixels: int = image_header.DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self):
        if not 1 <= self.max_image_pixels <= image_header.MAX_PIXELS_LIMIT:
            raise ValueError(f"--max_image_pixels must lie in [1, "
                             f"{image_header.MAX_PIXELS_LIMIT}]; got {self.max_image_pixels}")


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
        raise invalid(f"input {name!r} does not give its shape (tensor_shape.unknown_rank)")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise invalid(f"input {name!r} claims shape {dims}; sizes must be >= 0")
    count = math.prod(dims)
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise invalid(f"input {name!r} has an unknown {dtype_name(proto.dtype)}") from None
    if dtype != tf.string and proto.tensor_content:
        held, extra = divmod(len(proto.tensor_content), dtype.size)
        if extra:
            raise invalid(f"input {name!r}: tensor_content of {len(proto.tensor_content)} "
                          f"bytes is not a whole number of {dtype.name} values")
    elif dtype in _VALUE_FIELDS:
        field, per_value = _VALUE_FIELDS[dtype]
        held = len(getattr(proto, field)) // per_value
    else:
        raise invalid(f"input {name!r}: send {dtype.name} values in tensor_content")
    if held != count:
        raise invalid(f"input {name!r} claims shape {shape_text(dims)} ({count} values) but "
                      f"holds {held} values")
    if dtype == tf.string:
        return sum(len(value) for value in proto.string_val)
    return count * dtype.size


def request_arrays(signature_name, signature_def, request, limits):
    """The request's TensorProtos as ndarrays: dtypes checked against the SignatureDef, each
    proto's shape against its content, and the decoded total against the message limit."""
    arrays, total = {}, 0
    for name, proto in request.inputs.items():
        info = signature_def.inputs.get(name)
        if info is not None and proto.dtype != info.dtype:
            raise invalid(f"input {name!r} of signature {signature_name!r} must be "
                          f"{dtype_name(info.dtype)}; got {dtype_name(proto.dtype)}")
        total += _decoded_bytes(name, proto)
        if total > limits.max_message_bytes:
            raise exhausted(f"the request's inputs decode to more than "
                            f"{limits.max_message_bytes} bytes (--max_message_mb)")
        try:
            arrays[name] = tf.make_ndarray(proto)
        except (ValueError, TypeError) as error:
            raise invalid(f"input {name!r} is not a valid TensorProto: {error}") from None
    return arrays


def check_inputs(signature_name, signature_def, inputs, limits):
    """inputs {name: ndarray}: keys, ranks, fixed dims and non-emptiness as the SignatureDef
    demands, finite floats, and encoded images within the pixel limit."""
    expected = signature_def.inputs
    missing = sorted(set(expected) - set(inputs))
    extra = sorted(set(inputs) - set(expected))
    if missing or extra:
        raise invalid(f"signature {signature_name!r} takes inputs {sorted(expected)}; the "
                      f"request is missing {missing} and has unexpected {extra}")
    for name, value in inputs.items():
        if not expected[name].tensor_shape.unknown_rank:
            dims = [d.size for d in expected[name].tensor_shape.dim]
            if value.ndim != len(dims) or any(d >= 0 and d != n
                                              for d, n in zip(dims, value.shape)):
                raise invalid(f"input {name!r} of signature {signature_name!r} must have "
                              f"shape {shape_text(dims)}; got {shape_text(value.shape)}")
        if value.size == 0:
            raise invalid(f"input {name!r} is empty (shape {shape_text(value.shape)})")
        dtype = tf.dtypes.as_dtype(expected[name].dtype)
        if dtype.is_floating:
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                raise invalid(f"input {name!r} holds {bad} NaN or infinite value(s); send "
                              "finite numbers")
        elif dtype == tf.string:
            _check_encoded_images(name, value, limits.max_image_pixels)
    if len({value.shape[0] for value in inputs.values() if value.ndim}) > 1:
        raise invalid("all inputs must have the same batch size")


_declared_size = tf.function(image_header.declared_size,
                             input_signature=[tf.TensorSpec([], tf.string)])


def _check_encoded_images(name, value, max_pixels):
    """Refuses strings whose image header declares more than max_pixels pixels (or a JPEG
    XL, whose size is not read) before the model decodes them; other strings pass."""
    for index, contents in np.ndenumerate(value):
        where = f"input {name!r}{list(index)}"
        try:
            size = _declared_size(contents)
        except tf.errors.InvalidArgumentError as error:
            raise invalid(f"{where} is not a readable image: {error.message}") from None
        if image_header.within_limit(size, max_pixels):
            continue
        height, width = (int(n) for n in size)
        if height < 0:
            raise invalid(f"{where} is a JPEG XL image, whose size cannot be checked before "
                          f"decoding; send {image_header.FORMATS}")
        raise exhausted(f"{where} declares a {height}x{width} image ({height * width} "
                        f"pixels); the limit is {max_pixels} pixels (--max_image_pixels)")
