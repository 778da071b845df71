"""An embedded TensorFlow Serving: `tensorflow.serving.PredictionService` (Predict,
GetModelMetadata) and `ModelService.GetModelStatus` over gRPC (TLS with an SSLConfig, as
tensorflow_model_server's --ssl_config_file), plus TF Serving's REST API (`rest`), for the
SavedModels that `tfattncut.serving.export` writes (any Predict-signature SavedModel works).

Behaviour follows `tensorflow_model_server` where a client can see it: the newest loadable
integer version under a model's base path is served and newer ones are loaded (with their
warm-up requests) while serving, then swapped in (`versions`); requests already running
finish on the version they started with. Bad requests get INVALID_ARGUMENT (inputs),
NOT_FOUND (model, version, signature) or RESOURCE_EXHAUSTED (message or image over its limit,
or no room in the in-flight memory budget) and a message naming the problem (`validation`).
Requests in flight share one memory budget (`admission`); a request whose client has gone
(deadline passed, cancelled) is dropped between stages. Deviations: an unknown signature is
NOT_FOUND (TF Serving says FAILED_PRECONDITION), and the server binds 127.0.0.1 unless told
otherwise (TF Serving binds every interface).
"""
import concurrent.futures
import threading
import time

import grpc
from absl import logging
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, prediction_service_pb2_grpc,
                                     status_pb2)

from tfattncut.serving import memory, rest
from tfattncut.serving.admission import NO_DEADLINE, Call, MemoryBudget
from tfattncut.serving.servable import run_predict
from tfattncut.serving.validation import (DEFAULT_MAX_MESSAGE_BYTES, SERVER_MAX_IMAGE_PIXELS,
                                          RequestLimits, ServingError, invalid, not_found,
                                          quoted)
from tfattncut.serving.versions import ModelSource

DEFAULT_HOST = "127.0.0.1"
# gRPC calls beyond the workers wait in a queue; past this many in all, a call is answered
# RESOURCE_EXHAUSTED at once, so that a client opening streams without end cannot grow the
# queue (REST's counterpart: rest.MAX_CONNECTIONS and the per-client limit).
DEFAULT_MAX_CONCURRENT_RPCS = 1024
# How long stop() waits for gRPC's own shutdown past the grace period (it cancels the calls
# still running at the end of the grace period, then returns quickly).
_STOP_MARGIN_SECONDS = 1.0


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

    def __init__(self, server):
        self._server = server

    def Predict(self, request, context):
        remaining = context.time_remaining()
        call = Call.within(remaining, cancelled=lambda: not context.is_active())
        return _answer(context, lambda request: self._server.predict(request, call), request)

    def GetModelMetadata(self, request, context):
        return _answer(context, self._server.get_model_metadata, request)

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "this server implements Predict and GetModelMetadata only")

    Classify = Regress = MultiInference = _unimplemented


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):

    def __init__(self, server):
        self._server = server

    def GetModelStatus(self, request, context):
        return _answer(context, self._server.get_model_status, request)

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "reloading the model config is not supported; restart the server")


def _answer(context, handler, request):
    try:
        return handler(request)
    except ServingError as error:
        context.abort(error.code, error.message)


class ModelServer:
    """The gRPC (and optional REST) server over one or more ModelSources.

    models: {name: base_path}. `poll_wait_seconds` as tensorflow_model_server's
    --file_system_poll_wait_seconds: > 0 polls that often, 0 once, < 0 never.
    `port=0` picks a free port (see `.port` after `start()`). `credentials`
    (config_files.read_ssl_config_file) puts TLS on the gRPC port. A port that cannot be
    bound is an OSError naming its flag (--port, --rest_api_port), with no port left held.
    `max_inflight_memory_bytes`: the memory budget of the requests in flight (None: a share
    of the machine's, `memory.default_budget_bytes`). `max_concurrent_rpcs`: gRPC calls
    running or queued for a worker at once (more are RESOURCE_EXHAUSTED).
    """

    def __init__(self, models, port=8500, host=DEFAULT_HOST, rest_api_port=None,
                 batching=None, poll_wait_seconds=1.0, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                 max_image_pixels=SERVER_MAX_IMAGE_PIXELS, max_workers=32, credentials=None,
                 rest_api_num_threads=rest.DEFAULT_NUM_THREADS,
                 rest_api_timeout_seconds=rest.DEFAULT_TIMEOUT_SECONDS,
                 rest_api_max_connections_per_client=rest.DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
                 max_inflight_memory_bytes=None,
                 max_concurrent_rpcs=DEFAULT_MAX_CONCURRENT_RPCS):
        self.limits = RequestLimits(max_message_bytes, max_image_pixels)
        self.budget = MemoryBudget(max_inflight_memory_bytes or memory.default_budget_bytes())
        # Before any model loads: freed memory then goes back, and a version's measured cost
        # follows its tensors (docs/serving.md: what a request may cost).
        memory.return_large_blocks()
        self.sources = {name: ModelSource(name, path, batching, self.limits, self.budget)
                        for name, path in models.items()}
        self.poll_wait_seconds = poll_wait_seconds
        # gRPC binds with SO_REUSEPORT unless told not to: a second server on a port in use
        # would start and take half of the first one's clients.
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.so_reuseport", 0)]
        self._grpc = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers),
                                 options=options, maximum_concurrent_rpcs=max_concurrent_rpcs)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), self._grpc)
        if rest_api_port and rest_api_port == port:
            raise ValueError(f"--port and --rest_api_port are both {port}; give each its own")
        # REST binds first: a socket server frees its port when closed, while gRPC holds a
        # bound port until a started server stops, so a failed bind must come after it.
        self._rest = None
        if rest_api_port is not None:
            try:
                self._rest = rest.RestServer((host, rest_api_port), self, rest_api_num_threads,
                                             rest_api_timeout_seconds,
                                             rest_api_max_connections_per_client)
            except OSError as error:
                raise OSError(f"--rest_api_port={rest_api_port}: cannot bind the REST port "
                              f"{host}:{rest_api_port}: {error.strerror}") from None
        address = f"{host}:{port}"
        try:
            self.port = (self._grpc.add_secure_port(address, credentials) if credentials
                         else self._grpc.add_insecure_port(address))
        except RuntimeError:  # grpc gives no reason; these are the ones a user can fix
            if self._rest:
                self._rest.close()
            tls = (", or the TLS key does not match its certificate (--ssl_config_file)"
                   if credentials else "")
            raise OSError(f"--port={port}: cannot bind the gRPC port {address}: the port is "
                          f"in use (--port=0 picks a free one) or --host={host} is not an "
                          f"address of this machine{tls}") from None
        self._stop = threading.Event()
        self._poller = None

    @property
    def rest_address(self):
        """(host, port) the REST API is bound to, or None."""
        return self._rest.server_address[:2] if self._rest else None

    @property
    def rest_api_port(self):
        return self._rest.server_address[1] if self._rest else None

    def poll(self):
        for source in self.sources.values():
            source.poll()

    def start(self):
        """Loads what is on disk now (if polling at all), then starts serving."""
        if self.poll_wait_seconds >= 0:
            self.poll()
        if self.poll_wait_seconds > 0:
            self._poller = threading.Thread(target=self._poll_loop, daemon=True,
                                            name="version-poller")
            self._poller.start()
        if self._rest:
            self._rest.start()
        self._grpc.start()
        return self

    def _poll_loop(self):
        """Polls until stopped; no error ends it (ModelSource.poll logs its own)."""
        while not self._stop.wait(self.poll_wait_seconds):
            try:
                self.poll()
            except Exception:
                logging.exception("Polling the model folders failed; polling again in %g s",
                                  self.poll_wait_seconds)

    def stop(self, grace=5.0):
        """Stops accepting requests on both ports, lets running ones finish (up to `grace`
        s), unloads. Returns within about `grace` s whatever the threads are doing: gRPC
        cancels the calls still running then, which ends their waits; a model call cannot be
        interrupted, so its thread may run on (`launch.serve` exits regardless)."""
        self._stop.set()
        deadline = time.monotonic() + grace
        stopped = self._grpc.stop(grace)
        if self._rest:
            self._rest.stop(deadline)
        stopped.wait(max(0.0, deadline - time.monotonic()) + _STOP_MARGIN_SECONDS)
        if self._poller is not None:  # a version loading now finishes in the background
            self._poller.join(max(0.0, deadline - time.monotonic()))
        for source in self.sources.values():
            source.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(grace=0)

    def source(self, model_spec):
        """(ModelSource, version or None) of a ModelSpec; NOT_FOUND for unknown names."""
        if model_spec.name not in self.sources:
            raise not_found(f"no model named {quoted(model_spec.name)}; this server serves "
                            f"{sorted(self.sources)}")
        if model_spec.version_label:
            raise not_found(f"version labels are not supported (got "
                            f"{quoted(model_spec.version_label)}); ask for a version number")
        version = model_spec.version.value if model_spec.HasField("version") else None
        return self.sources[model_spec.name], version

    def servable(self, model_spec):
        source, version = self.source(model_spec)
        return source.get(version)

    def predict(self, request, call=NO_DEADLINE):
        call.check("it started")
        return run_predict(self.servable(request.model_spec), request, call)

    def get_model_metadata(self, request):
        if list(request.metadata_field) != ["signature_def"]:
            raise invalid(f"metadata_field must be ['signature_def']; got "
                          f"{quoted(list(request.metadata_field))}")
        servable = self.servable(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signatures)
        return response

    def get_model_status(self, request):
        source, version = self.source(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, status in source.status(version):
            response.model_version_status.add(
                version=number, state=status.state, status=status_pb2.StatusProto(
                    error_code=status.error_code, error_message=status.error_message))
        return response
