"""One loaded version of a model and how a request is let onto it: loading, the measured
cost of each signature, the signature lookup, the input checks of `validation` and admission
by cost (`admission`). Running a signature, alone or batched with concurrent requests, is
`batching`'s.

What a request costs is measured when a version loads (`Servable.costs`): each signature
with image inputs runs on images of 128x128 pixels and larger (`_CALIBRATION_SIDES`) while
nothing else runs, and the growth of the peak memory from the smallest gives the bytes per
pixel (a request's cost counts all its images' pixels: an overestimate for a signature that
runs its images one at a time).
The same runs give the least time a pixel takes (their CPU time over the cores): a request
that could not end before its deadline even at that rate is not started (a model call
cannot be stopped once it runs). A first run on two images checks, with batching on, that
every output has one row per input row (a model whose outputs lose the batch dimension
cannot be split among the requests of a batch), so such a model fails to load instead of
failing every request.
"""
import dataclasses
import os
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2

from tfattncut.serving import image_header, memory
from tfattncut.serving.admission import NO_DEADLINE, MemoryBudget
from tfattncut.serving.batching import (ONE_ROW_PER_INPUT, Batcher, call_signature,
                                        outputs_without_rows)
from tfattncut.serving.export import (DEFAULT_SIGNATURE, WARMUP_FILE, read_warmup_file,
                                      warmup_image)
from tfattncut.serving.validation import (RequestLimits, ServingError, check_inputs, invalid,
                                          not_found, quoted, quoted_list, request_arrays,
                                          shape_text, string_bytes)

# Sides of the images measured, in turn: the batch of two at the smallest side runs first (its
# one-off allocations are no cost per pixel; it shows whether the outputs keep the batch
# dimension), then one image a side until the peak has grown by _LEAST_GROWTH_BYTES over the
# smallest side's. A call's peak varies by a few MiB from run to run (which of the executor's
# threads holds what when), so a smaller growth would give the noise as the slope: the tests'
# tiny generator measured -80 to 130 bytes a pixel between 128² and 256² on an AVX2 machine,
# 76-93 up to 1024² (about 1 s more a signature). A CUT generator of ngf 64 (about 1,000 bytes
# a pixel) stops at 256²: 114,688 pixels, 1.5 s of a 2-core machine (13 us a pixel). Where
# the peak is the resident set's, it follows the tensors only if glibc mapped large blocks on
# their own from before the model loaded (`ModelServer` sees to it): else 707-1,499 bytes a
# pixel for that generator.
_CALIBRATION_SIDES = (128, 256, 512, 1024)
_LEAST_GROWTH_BYTES = 32 << 20
# A request's tensors outside the model's own memory: the received message, its ndarrays and
# the response's copy of the outputs (about the inputs' size for an image translator).
_COPIES_OUTSIDE_THE_MODEL = 3
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_NO_LIMITS = RequestLimits(max_message_bytes=1 << 62,
                           max_image_pixels=image_header.MAX_PIXELS_LIMIT)
# The slope measured between the two sides ran up to 10 % under the peak per pixel of
# 1024x1024 and 2048x2048 images (a tiny generator, malloc'd tensors).
_MARGIN = 1.25


@dataclasses.dataclass(frozen=True)
class SignatureCost:
    """What one call of a signature holds in memory: fixed_bytes + bytes_per_pixel x the
    inputs' pixels (`validation.check_inputs`), and the least time it takes per pixel,
    measured when the version loaded (`measured` False: a signature without image inputs,
    whose cost is its tensors' alone)."""
    fixed_bytes: int = 0
    bytes_per_pixel: float = 0.0
    seconds_per_pixel: float = 0.0
    measured: bool = False


class Servable:
    """One loaded version of a model: its signatures, their SignatureDefs and measured costs,
    the limits every request on it is checked against and the budget it is admitted from."""

    def __init__(self, name, version, path, batching=None, limits=RequestLimits(),
                 budget=None):
        self.name, self.version, self.path, self.limits = name, version, path, limits
        self.budget = budget or MemoryBudget(memory.default_budget_bytes())
        self._loaded = tf.saved_model.load(path)
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            meta_graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
        self.signature_defs = {key: value for key, value in meta_graph.signature_def.items()
                               if key in self._loaded.signatures}
        self._runners = {key: (Batcher(key, fn, batching) if batching else
                               lambda inputs, call=NO_DEADLINE, fn=fn: call_signature(fn, inputs))
                         for key, fn in self._loaded.signatures.items()}
        try:
            with self.budget.exclusive():
                self.costs = {key: self._measure(key, batching is not None)
                              for key in self.signature_defs}
        except BaseException:
            self.close()
            raise

    def _measure(self, signature_name, batching):
        """The SignatureCost of a signature (see the module's docstring); a ValueError when,
        with `batching`, an output does not keep the batch dimension."""
        signature_def = self.signature_defs[signature_name]
        pair = _calibration_inputs(signature_def, _CALIBRATION_SIDES[0], 2)
        if pair is None:
            return SignatureCost()
        function = self._loaded.signatures[signature_name]
        peaks, pixels, rates = [], [], []
        try:
            outputs = call_signature(function, pair)
            for side in _CALIBRATION_SIDES:
                inputs = _calibration_inputs(signature_def, side, 1)
                started = time.process_time()
                peaks.append(memory.peak_growth_bytes(lambda: call_signature(function, inputs)))
                pixels.append(check_inputs(signature_name, signature_def, inputs, _NO_LIMITS))
                # CPU time over the cores: what no run can beat, however idle the machine;
                # wall time would count other processes' load at this moment.
                rates.append((time.process_time() - started) / pixels[-1] / _CORES)
                # Enough growth for a slope, or inputs of a fixed height and width (the same
                # pixels at every side: no slope to find).
                if len(peaks) > 1 and (peaks[-1] - peaks[0] >= _LEAST_GROWTH_BYTES or
                                       pixels[-1] == pixels[0]):
                    break
        except ServingError as error:
            logging.warning("Model %s version %d signature %s fails on images, so its cost "
                            "is counted as its tensors' alone: %s", self.name, self.version,
                            signature_name, error.message)
            return SignatureCost()
        lost = outputs_without_rows(outputs, 2)
        if batching and lost:
            raise ValueError(
                f"signature {signature_name!r} answers 2 input rows with outputs of shapes "
                f"{', '.join(f'{k}: {shape_text(v)}' for k, v in lost.items())}: "
                f"{ONE_ROW_PER_INPUT}")
        grown = pixels[-1] - pixels[0]
        per_pixel = max(0.0, (peaks[-1] - peaks[0]) / grown) if grown else 0.0
        cost = SignatureCost(int(max(0.0, peaks[0] - per_pixel * pixels[0])), per_pixel,
                             min(rates), True)
        logging.info("Model %s version %d signature %s: %.0f bytes per pixel, %.1f MiB fixed, "
                     "%.2f s per megapixel", self.name, self.version, signature_name,
                     cost.bytes_per_pixel, cost.fixed_bytes / (1 << 20),
                     cost.seconds_per_pixel * 1e6)
        return cost

    def cost(self, signature_name, pixels, inputs):
        """The estimated bytes of one call of a signature on `inputs` {name: ndarray} holding
        `pixels` pixels."""
        measured = self.costs.get(signature_name, SignatureCost())
        tensors = sum(value.nbytes if value.dtype != object else
                      string_bytes(value.flat) for value in inputs.values())
        return int(measured.fixed_bytes + _MARGIN * measured.bytes_per_pixel * pixels
                   + _COPIES_OUTSIDE_THE_MODEL * tensors)

    def batch_sizes(self):
        """{signature: Counter(rows per model call)} where batching is on."""
        return {key: runner.batch_sizes for key, runner in self._runners.items()
                if isinstance(runner, Batcher)}

    def signature(self, name):
        """(SignatureDef, runner) of a signature name ('' = serving_default)."""
        name = name or DEFAULT_SIGNATURE
        if not isinstance(name, str):
            raise invalid(f"the signature name must be a string; got {quoted(name)}")
        if name not in self.signature_defs:
            raise not_found(f"model {quoted(self.name)} version {self.version} has no "
                            f"signature {quoted(name)}; it has "
                            f"{quoted_list(self.signature_defs)}")
        return self.signature_defs[name], self._runners[name]

    def warm_up(self):
        """Replays assets.extra/tf_serving_warmup_requests (as TF Serving does on load),
        straight into the model: the export's own requests, not held to the limits of
        clients' nor kept waiting for company in a batch."""
        path = os.path.join(self.path, "assets.extra", WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        requests = read_warmup_file(path)
        for request in requests:
            name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            signature_def, _ = self.signature(name)
            call_signature(self._loaded.signatures[name],
                  request_arrays(name, signature_def, request, _NO_LIMITS))
        return len(requests)

    def close(self):
        for runner in self._runners.values():
            if isinstance(runner, Batcher):
                runner.close()


def _check_time(call, cost, pixels):
    """DEADLINE_EXCEEDED, before it starts, for a request that cannot end before its deadline
    even at the fastest rate measured: a model call cannot be stopped once it runs."""
    remaining, least = call.remaining(), cost.seconds_per_pixel * pixels
    if remaining is not None and least > remaining:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                           f"the request would take at least {least:.1f} s to run ({pixels} "
                           f"pixels at the rate measured when the version loaded), more than "
                           f"the {max(0.0, remaining):.1f} s left before its deadline; it was "
                           "not started")


def _calibration_inputs(signature_def, side, batch):
    """Inputs {name: ndarray} of `batch` side x side images for a signature whose inputs are
    all images ([B, H, W, C] numbers, or [B] encoded images); None for any other."""
    inputs = {}
    for name, info in signature_def.inputs.items():
        dtype = tf.dtypes.as_dtype(info.dtype)
        dims = [d.size for d in info.tensor_shape.dim]
        if info.tensor_shape.unknown_rank:
            return None
        if dtype == tf.string and len(dims) == 1:
            png = tf.io.encode_png(warmup_image(side)).numpy()
            inputs[name] = np.array([png] * batch, dtype=object)
        elif (dtype.is_floating or dtype.is_integer) and len(dims) == 4:
            height, width, channels = (n if n > 0 else default for n, default in
                                       zip(dims[1:], (side, side, 3)))
            inputs[name] = np.zeros([batch, height, width, channels], dtype.as_numpy_dtype)
        else:
            return None
    return inputs or None


def run_predict(servable, request, call=NO_DEADLINE):
    """A PredictRequest on a loaded version -> PredictResponse (raises ServingError)."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    outputs = run_arrays(servable, signature_name, request_arrays(
        signature_name, signature_def, request, servable.limits), call,
        list(request.output_filter))
    call.check("its answer was encoded")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


def run_arrays(servable, signature_name, inputs, call=NO_DEADLINE, output_filter=()):
    """inputs {name: ndarray} -> the signature's outputs {name: ndarray} (or those listed),
    once the request's cost is admitted from the servable's budget."""
    signature_def, runner = servable.signature(signature_name)
    unknown = set(output_filter) - set(signature_def.outputs)
    if unknown:
        raise invalid(f"output_filter names {quoted_list(unknown)}, which signature "
                      f"{quoted(signature_name)} does not have; it has "
                      f"{quoted_list(signature_def.outputs)}")
    pixels = check_inputs(signature_name, signature_def, inputs, servable.limits)
    with servable.budget.admit(servable.cost(signature_name, pixels, inputs), call):
        call.check("it ran")
        _check_time(call, servable.costs.get(signature_name, SignatureCost()), pixels)
        try:
            outputs = runner(inputs, call)
        except ServingError as error:
            raise ServingError(error.code, f"signature {quoted(signature_name)}: "
                                           f"{error.message}", error.http_status) from None
    return {name: value for name, value in outputs.items()
            if not output_filter or name in output_filter}
