"""TF Serving's REST API on a ModelServer: GET /v1/models/NAME[/versions/N][/metadata] and
POST /v1/models/NAME[/versions/N]:predict (row "instances" or columnar "inputs"), from a
request as `http_connection` read it to (HTTP status, JSON body bytes), made in a worker
thread. A JSON body whose parse would take more than the message limit (`json_cost`) is
refused before it is parsed.
"""
import base64
import binascii
import json
import re

import grpc
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from tfattncut.serving.admission import mib
from tfattncut.serving.export import DEFAULT_SIGNATURE
from tfattncut.serving.http_connection import json_body
from tfattncut.serving.servable import run_arrays
from tfattncut.serving.validation import (ServingError, exhausted, invalid, not_found,
                                          quoted, quoted_list)
from tfattncut.serving.version_folders import MAX_VERSION

# TF Serving's REST API maps status codes to HTTP like this; a body over the size limit is 413,
# a request whose client went away 499 (nginx's "client closed request"; no one reads it).
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.UNIMPLEMENTED: 501,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.INTERNAL: 500,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.CANCELLED: 499}
# Python's memory for a parsed JSON body, per token: a list and its first slot, a dict with a
# key, a number or string and its slot in a list. With tracemalloc, 100,000 rows of [r, g, b]
# (integers over 256 or floats) and of {"b64": ...} held 10-20 % less than this estimate
# (half as much for integers up to 256, which Python shares).
_JSON_BYTES = {b"[": 64, b"{": 240, b",": 40}
# No request to an image signature nests deeper: a body that opens this many arrays in a row
# is refused before its cost is estimated (Python's parser would give up at about 1000).
_TOO_DEEP = b"[" * 64
_STATE = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODE = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name[
    "status"].message_type.fields_by_name["error_code"].enum_type


def respond(model_server, request, call):
    """(HTTP status, JSON body bytes) of a request to `model_server` (its predict, metadata
    and status calls); runs in a worker thread."""
    try:
        return 200, _result(model_server, request, call)
    except ServingError as error:
        return (error.http_status or HTTP_STATUS.get(error.code, 500),
                json_body({"error": error.message}))
    except Exception as error:  # a bug here must not cost the client its answer
        logging.exception("REST %s %s failed", request.method, request.path[:200])
        return 500, json_body({"error": f"internal error: {type(error).__name__}: {error}"})


def _result(model_server, request, call):
    match = _PATH.match(request.path.split("?")[0])
    verb = match.group(3) if match else None
    if not match or (request.method == "POST") != (verb == ":predict"):
        raise not_found(f"{request.method} {quoted(request.path)} is not a TF Serving "
                        "REST endpoint")
    spec = predict_pb2.PredictRequest().model_spec
    spec.name = match.group(1)
    if match.group(2):
        version = int(match.group(2))
        if version > MAX_VERSION:
            raise invalid(f"version {match.group(2)[:40]} is out of range (at most "
                          f"{MAX_VERSION})")
        spec.version.value = version
    if verb == "/metadata":
        response = model_server.get_model_metadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=spec, metadata_field=["signature_def"]))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return json_body({"model_spec": _proto_json(response.model_spec),
                          "metadata": {"signature_def": _proto_json(signatures)}})
    if verb == ":predict":
        call.check("it started")
        return _rest_predict(model_server.servable(spec), request.body, call)
    return json_body(_status_json(model_server.get_model_status(
        get_model_status_pb2.GetModelStatusRequest(model_spec=spec))))


_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)?$")


def json_cost(body):
    """The bytes Python takes to parse a JSON body (an upper estimate from its tokens; at
    least the body's own size, which its strings take again)."""
    return len(body) + sum(per_token * body.count(token)
                           for token, per_token in _JSON_BYTES.items()) + _JSON_BYTES[b","]


def _proto_json(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _status_json(response):
    """GetModelStatusResponse as TF Serving's REST API prints it (defaults included)."""
    return {"model_version_status": [
        {"version": str(status.version), "state": _STATE.Name(status.state),
         "status": {"error_code": _ERROR_CODE.values_by_number[status.status.error_code].name,
                    "error_message": status.status.error_message}}
        for status in response.model_version_status]}


def _rest_predict(servable, body, call):
    """The JSON predict request body -> the JSON answer's bytes (TF Serving's formats). What
    parsing the body and encoding the answer take (`json_cost`) is refused over the message
    limit, before the parse, and otherwise admitted from the budget."""
    if _TOO_DEEP in body:
        raise invalid(f"the JSON body nests deeper than this server reads ({len(_TOO_DEEP)} "
                      "arrays in a row)")
    cost, limit = json_cost(body), servable.limits.max_message_bytes
    if cost > limit:
        raise exhausted(f"the JSON body would take about {mib(cost)} to parse, more than the "
                        f"limit of {mib(limit)} (--max_message_mb; each number takes about "
                        f"{_JSON_BYTES[b',']} bytes parsed): send images encoded, "
                        '{"b64": ...} to translate_encoded')
    with servable.budget.admit(cost, call, "parsing the JSON body"):
        signature_name, arrays, columnar = _parse_predict(servable, body)
    outputs = run_arrays(servable, signature_name, arrays, call)
    call.check("its answer was encoded")
    with servable.budget.admit(cost, call, "encoding the JSON answer"):
        encoded = {name: _array_to_json(name, value) for name, value in outputs.items()}
        return json_body(_predict_answer(encoded, columnar))


def _predict_answer(encoded, columnar):
    """The predict answer of the outputs {name: nested lists}, in the request's format."""
    if columnar:
        return {"outputs": encoded if len(encoded) > 1 else next(iter(encoded.values()))}
    if len(encoded) == 1:
        return {"predictions": next(iter(encoded.values()))}
    return {"predictions": [dict(zip(encoded, row)) for row in zip(*encoded.values())]}


def _parse_predict(servable, body):
    """(signature name, {input: ndarray}, whether columnar) of a JSON predict body."""
    try:
        request = json.loads(body)
    except RecursionError:
        raise invalid("the JSON body nests deeper than this server reads") from None
    except ValueError as error:
        raise invalid(f"request body is not JSON: {str(error)[:200]}") from None
    if not isinstance(request, dict) or ("instances" in request) == ("inputs" in request):
        raise invalid('the JSON body must be an object with exactly one of "instances" '
                      '(row format) or "inputs" (columnar format)')
    signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    names = sorted(signature_def.inputs)
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list):
            raise invalid('"instances" must be a list, one entry per example')
        if len(names) == 1 and not all(isinstance(r, dict) and names[0] in r for r in rows):
            columns = {names[0]: rows}
        else:
            columns = {name: [row.get(name) if isinstance(row, dict) else None for row in rows]
                       for name in {key for row in rows if isinstance(row, dict) for key in row}}
    else:
        inputs = request["inputs"]
        columns = inputs if isinstance(inputs, dict) and (len(names) != 1 or names[0] in inputs) \
            else {names[0]: inputs}
    unexpected = set(columns) - set(names)
    if unexpected:
        raise invalid(f"signature {quoted(signature_name)} takes inputs {quoted_list(names)}; "
                      f"the request has unexpected {quoted_list(unexpected)}")
    return signature_name, {name: _json_to_array(name, value, signature_def.inputs[name])
                            for name, value in columns.items()}, "inputs" in request


def _json_to_array(name, value, info):
    """A JSON value (nested lists) -> ndarray of the input's dtype. Integer inputs take
    integers only, in the dtype's range: 1.7 is refused, not truncated to 1."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    try:
        if dtype == tf.string:
            return np.array(_decode_strings(value), dtype=object)
        if not dtype.is_integer:
            return np.array(value, dtype=dtype.as_numpy_dtype)
        parsed = np.array(value)
        if parsed.size and parsed.dtype.kind not in "iu":
            raise invalid(f"input {quoted(name)} is {dtype.name}: send integers only (the request "
                          f"holds {parsed.dtype.name} values)")
        if parsed.size and (parsed.min() < dtype.min or parsed.max() > dtype.max):
            raise invalid(f"input {quoted(name)} is {dtype.name}: values must lie in "
                          f"[{dtype.min}, {dtype.max}]; got [{parsed.min()}, {parsed.max()}]")
        return parsed.astype(dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as error:
        raise invalid(f"input {quoted(name)} cannot be read as {dtype.name}: "
                      f"{str(error)[:200]}") from None


def _decode_strings(value):
    """JSON strings / {"b64": ...} objects (nested lists) -> bytes."""
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"], validate=True)
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def _array_to_json(name, value):
    """ndarray -> nested lists; strings as {"b64": ...} for outputs named *_bytes."""
    if value.dtype == object:
        as_text = (lambda s: {"b64": base64.b64encode(s).decode()}) if name.endswith("_bytes") \
            else (lambda s: s.decode("utf-8", "replace"))
        return np.vectorize(as_text, otypes=[object])(value).tolist()
    return value.tolist()
