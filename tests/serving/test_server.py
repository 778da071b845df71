"""tfattncut.serving.server on a free loopback port, through the real gRPC stubs and REST:
answers, limits, abuse of the REST port, TLS, and version loading."""
import base64
import collections
import concurrent.futures
import http.client
import json
import os
import select
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from tests.serving.servingdata import (export_tiny_model, make_certificates, png_claiming,
                                       write_ssl_config)
from tfattncut.serving import admission, config_files, versions
from tfattncut.serving import server as server_lib
from tfattncut.serving.export import (BYTES_INPUT, BYTES_OUTPUT, INPUT, OUTPUT,
                                      BatchingOptions)
from tfattncut.serving.validation import ServingError

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

MAX_MESSAGE_BYTES = 100_000
MAX_IMAGE_PIXELS = 64 * 64
REST_TIMEOUT_SECONDS = 1.0
UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def _request(signature="serving_default", model="tiny", version=None, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _hollow_request(dims, int_val=()):
    """A ~40-byte request claiming a uint8 tensor of `dims` with no values in it (but those
    of `int_val`)."""
    request = _request()
    proto = request.inputs[INPUT]
    proto.dtype = tf.uint8.as_datatype_enum
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.int_val.extend(int_val)
    return request


def _png(height, width):
    return tf.io.encode_png(np.zeros([height, width, 3], np.uint8)).numpy()


def _break_version(model_dir, version):
    """A version folder whose saved_model.pb is not a SavedModel."""
    os.makedirs(os.path.join(model_dir, str(version)))
    with open(os.path.join(model_dir, str(version), "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")


def setUpModule():
    """Two versions of a tiny model with different weights, exported once for every test."""
    global VERSION_1, VERSION_2
    root = tempfile.mkdtemp()
    VERSION_1 = export_tiny_model(root, seed=0).path
    VERSION_2 = export_tiny_model(root, seed=1).path


def _model_dir(*versions):
    """A fresh model folder holding copies of the given version folders (as 1, 2, ...)."""
    model_dir = tempfile.mkdtemp()
    for number, version in enumerate(versions, start=1):
        shutil.copytree(version, os.path.join(model_dir, str(number)))
    return model_dir


class ServerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = _model_dir(VERSION_1)
        cls.local = tf.saved_model.load(VERSION_1).signatures
        cls.server = server_lib.ModelServer(
            {"tiny": cls.model_dir}, port=0, host="127.0.0.1", rest_api_port=0,
            poll_wait_seconds=0.2, max_message_bytes=MAX_MESSAGE_BYTES,
            max_image_pixels=MAX_IMAGE_PIXELS,
            rest_api_timeout_seconds=REST_TIMEOUT_SECONDS).start()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.server.port}", options=UNLIMITED)
        cls.predict = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)
        cls.models = model_service_pb2_grpc.ModelServiceStub(cls.channel)
        cls.pixels = np.random.default_rng(0).integers(0, 256, (2, 13, 17, 3), dtype=np.uint8)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop(grace=0)
        super().tearDownClass()

    def _good_request_answered(self):
        response = self.predict.Predict(_request(images=self.pixels[:1]), timeout=60)
        self.assertEqual(tf.make_ndarray(response.outputs[OUTPUT]).shape, (1, 13, 17, 3))

    def test_predict_on_every_signature_equals_the_saved_model(self):
        floats = self.pixels.astype(np.float32) / 127.5 - 1
        png = tf.io.encode_png(self.pixels[0]).numpy()
        cases = [("serving_default", INPUT, self.pixels, OUTPUT),
                 ("", INPUT, self.pixels, OUTPUT),
                 ("translate_float", INPUT, floats, OUTPUT),
                 ("translate_encoded", BYTES_INPUT, np.array([png, png], dtype=object),
                  BYTES_OUTPUT)]
        for signature, key, value, output in cases:
            response = self.predict.Predict(_request(signature, **{key: value}), timeout=60)
            self.assertEqual(response.model_spec.name, "tiny")
            self.assertEqual(response.model_spec.version.value, 1)
            self.assertEqual(response.model_spec.signature_name,
                             signature or "serving_default")
            want = self.local[signature or "serving_default"](**{key: tf.constant(value)})
            got = tf.make_ndarray(response.outputs[output])
            if output == BYTES_OUTPUT:
                self.assertEqual(list(got), list(want[output].numpy()))
            else:
                # The same SavedModel graph on the same inputs and batch shape in one process
                # (no batching here); the float32 values travel the proto unchanged.
                self.assertAllEqual(got, want[output])

    def test_metadata_and_status(self):
        response = self.predict.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "tiny"}, metadata_field=["signature_def"]), timeout=30)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        self.assertEqual(sorted(signatures.signature_def),
                         ["serving_default", "translate_encoded", "translate_float"])
        self.assertEqual(signatures.signature_def["serving_default"].inputs[INPUT].dtype,
                         tf.uint8.as_datatype_enum)
        self.assertEqual(response.model_spec.version.value, 1)
        status = self.models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "tiny"}), timeout=30)
        self.assertEqual([(s.version, s.state) for s in status.model_version_status],
                         [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)])

    def test_bad_requests_get_the_right_code_and_the_server_keeps_serving(self):
        code = grpc.StatusCode
        png = tf.io.encode_png(self.pixels[0]).numpy()
        no_field = get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "tiny"})
        cases = [
            ("wrong dtype", self.predict.Predict, _request(images=self.pixels.astype(np.int32)),
             code.INVALID_ARGUMENT, "must be uint8; got int32"),
            ("wrong rank", self.predict.Predict, _request(images=self.pixels[0]),
             code.INVALID_ARGUMENT, r"shape \[\?, \?, \?, 3\]; got \[13, 17, 3\]"),
            ("wrong channels", self.predict.Predict, _request(images=self.pixels[..., :2]),
             code.INVALID_ARGUMENT, r"got \[2, 13, 17, 2\]"),
            ("zero-size", self.predict.Predict, _request(images=self.pixels[:0]),
             code.INVALID_ARGUMENT, "empty"),
            ("too small", self.predict.Predict, _request(images=self.pixels[:, :4]),
             code.INVALID_ARGUMENT, "at least 5x5"),
            ("missing input key", self.predict.Predict, _request(pixels=self.pixels),
             code.INVALID_ARGUMENT, r"missing \['images'\]"),
            ("extra input key", self.predict.Predict,
             _request(images=self.pixels, extra=self.pixels), code.INVALID_ARGUMENT,
             r"unexpected \['extra'\]"),
            ("unknown model", self.predict.Predict, _request(model="nope", images=self.pixels),
             code.NOT_FOUND, "no model named 'nope'"),
            ("unknown version", self.predict.Predict, _request(version=9, images=self.pixels),
             code.NOT_FOUND, "no version 9"),
            ("unknown signature", self.predict.Predict, _request("nope", images=self.pixels),
             code.NOT_FOUND, "no signature 'nope'"),
            ("not an image", self.predict.Predict,
             _request("translate_encoded", image_bytes=np.array([b"GIF? no"], dtype=object)),
             code.INVALID_ARGUMENT, "Unknown image file format"),
            ("bytes to a pixel signature", self.predict.Predict,
             _request(images=np.array([png], dtype=object)), code.INVALID_ARGUMENT,
             "must be uint8; got string"),
            ("over the size limit", self.predict.Predict,
             _request(images=np.zeros([1, 200, 200, 3], np.uint8)), code.RESOURCE_EXHAUSTED,
             "larger than max"),
            ("a 69-byte PNG declaring 20000x20000", self.predict.Predict,
             _request("translate_encoded", image_bytes=np.array(
                 [png_claiming(20000, 20000)], dtype=object)), code.RESOURCE_EXHAUSTED,
             r"20000x20000 image .* the limit is 4096 pixels \(--max_image_pixels\)"),
            ("an image over the pixel limit", self.predict.Predict,
             _request("translate_encoded", image_bytes=np.array([_png(65, 64)], dtype=object)),
             code.RESOURCE_EXHAUSTED, r"65x64 image \(4160 pixels\)"),
            ("a 42-byte proto claiming 4800x4800", self.predict.Predict,
             _hollow_request([1, 4800, 4800, 3]), code.INVALID_ARGUMENT,
             r"claims shape \[1, 4800, 4800, 3\] \(69120000 values\) but holds 0"),
            ("a proto claiming 100000x100000", self.predict.Predict,
             _hollow_request([1, 100000, 100000, 3]), code.INVALID_ARGUMENT, "but holds 0"),
            ("uint8 int_val of 300", self.predict.Predict,
             _hollow_request([1, 1, 1, 3], int_val=[0, 300, 7]), code.INVALID_ARGUMENT,
             r"input 'images' is uint8: values must lie in \[0, 255\]; int_val holds "
             r"\[0, 300\]"),
            ("pixels over the pixel limit", self.predict.Predict,
             _request(images=np.zeros([1, 65, 64, 3], np.uint8)), code.RESOURCE_EXHAUSTED,
             r"holds 65x64 images \(4160 pixels each\); the limit is 4096 pixels "
             r"\(--max_image_pixels\)"),
            ("a 90,000-character model name", self.predict.Predict,
             _request(model="m" * 90_000, images=self.pixels), code.NOT_FOUND,
             r"no model named 'm{199}\.\.\. \(90002 characters\)"),
            ("a 90,000-character signature name", self.predict.Predict,
             _request("s" * 90_000, images=self.pixels), code.NOT_FOUND,
             r"no signature 's{199}\.\.\. \(90002 characters\)"),
            ("NaN to translate_float", self.predict.Predict,
             _request("translate_float", images=np.full([1, 8, 8, 3], np.nan, np.float32)),
             code.INVALID_ARGUMENT, "input 'images' holds 192 NaN or infinite"),
            ("metadata without field", self.predict.GetModelMetadata, no_field,
             code.INVALID_ARGUMENT, "metadata_field"),
            ("status of unknown version", self.models.GetModelStatus,
             get_model_status_pb2.GetModelStatusRequest(
                 model_spec={"name": "tiny", "version": {"value": 5}}),
             code.NOT_FOUND, "no version 5"),
            ("classify", self.predict.Classify, classification_pb2.ClassificationRequest(),
             code.UNIMPLEMENTED, "Predict and GetModelMetadata"),
        ]
        for name, rpc, request, want_code, pattern in cases:
            with self.subTest(name):
                with self.assertRaises(grpc.RpcError) as raised:
                    rpc(request, timeout=60)
                self.assertEqual(raised.exception.code(), want_code)
                self.assertRegex(raised.exception.details(), pattern)
                # One readable line, whatever the request held.
                self.assertLess(len(raised.exception.details()), 1000)
                self.assertNotIn("\n", raised.exception.details())
                self._good_request_answered()

    def test_eight_concurrent_clients_of_25_requests(self):
        want = self.local["serving_default"](images=tf.constant(self.pixels))[OUTPUT].numpy()

        def client(_):
            with grpc.insecure_channel(f"127.0.0.1:{self.server.port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                return [np.array_equal(tf.make_ndarray(stub.Predict(
                    _request(images=self.pixels), timeout=60).outputs[OUTPUT]), want)
                    for _ in range(25)]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = [ok for oks in pool.map(client, range(8)) for ok in oks]
        self.assertLen(results, 200)
        self.assertTrue(all(results))

    def test_rest_predict_metadata_and_status(self):
        base = f"http://127.0.0.1:{self.server.rest_api_port}/v1/models/tiny"
        png = tf.io.encode_png(self.pixels[0]).numpy()

        def call(url, body=None):
            data = None if body is None else (body if isinstance(body, bytes)
                                              else json.dumps(body).encode())
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=data),
                                            timeout=60) as reply:
                    return reply.status, json.loads(reply.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        status, reply = call(base + ":predict", {
            "signature_name": "translate_encoded",
            "instances": [{"b64": base64.b64encode(png).decode()}]})
        self.assertEqual(status, 200)
        got = base64.b64decode(reply["predictions"][0]["b64"])
        want = self.local["translate_encoded"](image_bytes=tf.constant([png]))
        self.assertEqual(got, want[BYTES_OUTPUT].numpy()[0])
        status, reply = call(base + "/versions/1:predict", {"inputs": self.pixels.tolist()})
        self.assertEqual(status, 200)
        want = self.local["serving_default"](images=tf.constant(self.pixels))[OUTPUT]
        self.assertAllEqual(np.array(reply["outputs"]), want)
        self.assertEqual(call(base), (200, {"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}))
        status, reply = call(base + "/metadata")
        self.assertEqual(status, 200)
        self.assertIn("translate_float", reply["metadata"]["signature_def"]["signature_def"])
        for url, body, want_status, pattern in [
                (base + ":predict", b"{not json", 400, "not JSON"),
                (base + ":predict", {"instances": [[[1.5]]]}, 400, "images"),
                (base + ":predict", {"instances": [[[[300, 0, 0]] * 8] * 8]}, 400, "uint8"),
                (base + ":predict", {"instances": [[[[1.7, 0, 0]] * 8] * 8]}, 400,
                 "'images' is uint8: send integers only"),
                # json.dumps writes inf as Infinity, which Python's JSON reader accepts.
                (base + ":predict", {"signature_name": "translate_float",
                                     "instances": [[[[float("inf"), 0, 0]] * 8] * 8]}, 400,
                 "input 'images' holds 64 NaN or infinite"),
                (base + ":predict", {"signature_name": "translate_encoded", "instances": [
                    {"b64": base64.b64encode(_png(80, 80)).decode()}]}, 413,
                 "--max_image_pixels"),
                (base.replace("tiny", "nope") + ":predict", {"instances": []}, 404, "nope"),
                (base + ":predict", {"signature_name": "x", "inputs": []}, 404, "'x'"),
                (base + ":predict", {"signature_name": [1], "instances": []}, 400,
                 r"the signature name must be a string; got \[1\]"),
                # 80 kB of [0], lists: over 2 MiB once parsed, far over the 100 kB limit.
                (base + ":predict", b'{"instances": [' + b"[0]," * 19_999 + b"[0]]}", 413,
                 r"the JSON body would take about 2\.1 MiB to parse, more than the limit "
                 r"of 0\.1 MiB \(--max_message_mb"),
                (base + ":predict", b" " * (MAX_MESSAGE_BYTES + 1), 413, "exceeds")]:
            with self.subTest(url=url, status=want_status):
                status, reply = call(url, body)
                self.assertEqual(status, want_status)
                self.assertRegex(reply["error"], pattern)


    def _raw(self, data):
        """Sends raw bytes to the REST port -> (status, headers, JSON body, closed), closed
        telling whether the server closed the connection after its one answer."""
        with socket.create_connection(("127.0.0.1", self.server.rest_api_port),
                                      timeout=10) as sock:
            sock.sendall(data)
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = json.loads(response.read())
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                closed = False
            return response.status, response.headers, body, closed

    def test_rest_abuse_gets_a_json_answer_and_frees_the_connection(self):
        predict = b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n"
        deep = b"[" * 40_000 + b"]" * 40_000
        cases = [
            ("body shorter than Content-Length",
             predict + b"Content-Length: 100\r\n\r\n{\"instances\"", 408, "did not arrive"),
            ("negative Content-Length", predict + b"Content-Length: -5\r\n\r\n", 400,
             "Content-Length must be one non-negative integer; got '-5'"),
            ("chunked body", predict + b"Transfer-Encoding: chunked\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\nGET /v1/models/tiny HTTP/1.1\r\n\r\n", 411,
             "Content-Length"),
            ("unsupported method", b"PUT /v1/models/tiny HTTP/1.1\r\nHost: x\r\n\r\n", 501,
             "Unsupported method"),
            ("too many headers", b"GET /v1/models/tiny HTTP/1.1\r\n"
             + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431,
             "Too many headers"),
        ]
        for name, data, want_status, pattern in cases:
            with self.subTest(name):
                start = time.monotonic()
                status, headers, body, closed = self._raw(data)
                self.assertEqual(status, want_status)
                self.assertEqual(headers["Content-Type"], "application/json")
                self.assertIn(pattern, body["error"])
                self.assertTrue(closed)
                self.assertLess(time.monotonic() - start, REST_TIMEOUT_SECONDS + 8)
        # Answered, and the connection stays open for the next request.
        for name, data, want_status, pattern in [
                ("23-digit version", b"GET /v1/models/tiny/versions/" + b"9" * 23
                 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "out of range"),
                ("JSON nested 40,000 deep", predict + b"Content-Length: %d\r\n\r\n"
                 % len(deep) + deep, 400, "nests deeper")]:
            with self.subTest(name):
                status, headers, body, _ = self._raw(data)
                self.assertEqual(status, want_status)
                self.assertIn(pattern, body["error"])
                self.assertNotIn("Python", headers["Server"])
        self._good_request_answered()

    def test_binds_loopback_by_default(self):
        with server_lib.ModelServer({"tiny": self.model_dir}, port=0, rest_api_port=0,
                                    poll_wait_seconds=-1) as server:
            self.assertEqual(server.rest_address[0], "127.0.0.1")


class BindTest(tf.test.TestCase):

    def test_a_port_in_use_is_an_os_error_naming_its_flag(self):
        model_dir = _model_dir(VERSION_1)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with self.assertRaisesRegex(OSError, f"^--port={port}: cannot bind the gRPC port "
                                        f"127.0.0.1:{port}: the port is in use"):
                server_lib.ModelServer({"tiny": model_dir}, port=port, poll_wait_seconds=-1)
            with self.assertRaisesRegex(OSError, f"^--rest_api_port={port}: cannot bind the "
                                        f"REST port 127.0.0.1:{port}: Address already in use"):
                server_lib.ModelServer({"tiny": model_dir}, port=0, rest_api_port=port,
                                       poll_wait_seconds=-1)

    def test_a_second_server_on_a_served_port_is_refused(self):
        """Not shared: gRPC's default SO_REUSEPORT would let it start and split the clients."""
        model_dir = _model_dir(VERSION_1)
        with server_lib.ModelServer({"tiny": model_dir}, port=0,
                                    poll_wait_seconds=-1) as first:
            with self.assertRaisesRegex(OSError, f"^--port={first.port}: cannot bind the gRPC "
                                        "port .*: the port is in use"):
                server_lib.ModelServer({"tiny": model_dir}, port=first.port,
                                       poll_wait_seconds=-1)

    def test_a_failed_grpc_port_frees_the_rest_port(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with socket.socket() as probe:  # a port free now, for the REST API
                probe.bind(("127.0.0.1", 0))
                rest_port = probe.getsockname()[1]
            with self.assertRaisesRegex(OSError, "^--port="):
                server_lib.ModelServer({"tiny": _model_dir(VERSION_1)},
                                       port=taken.getsockname()[1], rest_api_port=rest_port,
                                       poll_wait_seconds=-1)
        with socket.socket() as again:  # EADDRINUSE here if the REST server still held it
            again.bind(("127.0.0.1", rest_port))
        with self.assertRaisesRegex(ValueError, "--port and --rest_api_port are both"):
            server_lib.ModelServer({"tiny": _model_dir(VERSION_1)}, port=rest_port,
                                   rest_api_port=rest_port, poll_wait_seconds=-1)


class TlsTest(tf.test.TestCase):

    def test_tls_and_mutual_tls_on_the_grpc_port(self):
        root = tempfile.mkdtemp()
        pems = make_certificates(root)
        pixels = np.zeros([1, 8, 8, 3], np.uint8)
        # Named, so that a subtest's report (sent between pytest-xdist processes) is text.
        credentials_of = {
            "trusting the CA": grpc.ssl_channel_credentials(pems["ca"].encode()),
            "with a client certificate": grpc.ssl_channel_credentials(
                pems["ca"].encode(), pems["client_key"].encode(), pems["client"].encode()),
            "plaintext": None}
        model_dir = _model_dir(VERSION_1)
        for client_verify, answered, refused in [
                (False, ["trusting the CA", "with a client certificate"], ["plaintext"]),
                (True, ["with a client certificate"], ["trusting the CA", "plaintext"])]:
            path = write_ssl_config(os.path.join(root, "ssl.config"), pems, client_verify)
            with server_lib.ModelServer(
                    {"tiny": model_dir}, port=0, poll_wait_seconds=0,
                    credentials=config_files.read_ssl_config_file(path)) as server:
                def predict(client):
                    target = f"127.0.0.1:{server.port}"
                    credentials = credentials_of[client]
                    with (grpc.secure_channel(target, credentials) if credentials
                          else grpc.insecure_channel(target)) as channel:
                        return prediction_service_pb2_grpc.PredictionServiceStub(
                            channel).Predict(_request(images=pixels), timeout=30)

                for client in answered:
                    self.assertEqual(predict(client).model_spec.version.value, 1)
                for client in refused:
                    with self.subTest(client_verify=client_verify, client=client):
                        with self.assertRaises(grpc.RpcError) as raised:
                            predict(client)
                        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)


class VersionSwapTest(tf.test.TestCase):

    def test_new_version_is_picked_up_without_failing_requests(self):
        model_dir = _model_dir(VERSION_1)
        pixels = np.random.default_rng(1).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
        results, errors, stop = [], [], threading.Event()
        with server_lib.ModelServer({"tiny": model_dir}, port=0, host="127.0.0.1",
                                    poll_wait_seconds=0.1) as server, \
                grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def stream():
                deadline = time.monotonic() + 120
                for _ in range(3000):  # bounded: stops once v2 answered a few times
                    if time.monotonic() > deadline or \
                            sum(v == 2 for v, _ in results) >= 5:
                        break
                    try:
                        response = stub.Predict(_request(images=pixels), timeout=60)
                        results.append((response.model_spec.version.value,
                                        tf.make_ndarray(response.outputs[OUTPUT])))
                    except grpc.RpcError as error:
                        errors.append(error)
                stop.set()

            thread = threading.Thread(target=stream)
            thread.start()
            while not results and not stop.is_set():
                time.sleep(0.05)
            # As export does: write beside the model folder's versions, rename into place.
            shutil.copytree(VERSION_2, os.path.join(model_dir, ".staging-2"))
            os.rename(os.path.join(model_dir, ".staging-2"), os.path.join(model_dir, "2"))
            thread.join()
        self.assertEqual(errors, [])
        versions = [v for v, _ in results]
        self.assertEqual(versions, sorted(versions))
        self.assertEqual(versions[0], 1)
        self.assertEqual(versions[-1], 2)
        by_version = {}
        for version, out in results:
            by_version.setdefault(version, out)
            self.assertAllEqual(out, by_version[version])
        self.assertNotAllEqual(by_version[1], by_version[2])
        second = tf.saved_model.load(os.path.join(model_dir, "2")).signatures
        self.assertAllEqual(by_version[2], second["serving_default"](
            images=tf.constant(pixels))[OUTPUT])


class ModelSourceTest(tf.test.TestCase):

    def test_a_failed_version_reports_its_error_and_loads_once_fixed(self):
        model_dir = _model_dir(VERSION_1)
        source = versions.ModelSource("tiny", model_dir)
        source.poll()
        _break_version(model_dir, 3)
        os.makedirs(os.path.join(model_dir, "4"))  # no saved_model.pb yet: not a version
        for _ in range(versions.MAX_LOAD_ATTEMPTS + 1):
            source.poll()
        self.assertEqual(source.get().version, 1)
        self.assertEqual(source.available_versions(), [1, 3])
        (first, loaded), (third, failed) = source.status()
        self.assertEqual((first, loaded), (1, versions.VersionStatus(versions.STATE.AVAILABLE)))
        self.assertEqual((third, failed.state), (3, versions.STATE.END))
        self.assertNotEqual(failed.error_code, versions.OK)
        self.assertRegex(failed.error_message, r"version 3 failed to load from .*3 \(attempt 6 "
                                               r"of 6, retried when its folder changes\)")
        with self.assertRaisesRegex(ServingError, "no version 3; serving version 1"):
            source.get(3)
        # A fixed re-export of version 3 replaces the folder: loaded without a restart.
        shutil.rmtree(os.path.join(model_dir, "3"))
        shutil.copytree(VERSION_2, os.path.join(model_dir, "3"))
        source.poll()
        self.assertEqual(source.get().version, 3)
        self.assertEqual(source.status(3), [(3, versions.VersionStatus(versions.STATE.AVAILABLE))])
        source.close()

    def test_a_broken_newest_version_at_start_serves_the_newest_loadable_at_once(self):
        model_dir = _model_dir(VERSION_1)
        _break_version(model_dir, 2)
        with server_lib.ModelServer({"tiny": model_dir}, port=0, host="127.0.0.1",
                                    rest_api_port=0, poll_wait_seconds=60) as server, \
                grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                _request(images=np.zeros([1, 8, 8, 3], np.uint8)), timeout=30)
            self.assertEqual(response.model_spec.version.value, 1)
            status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "tiny"}),
                timeout=30).model_version_status
            self.assertEqual([(s.version, s.state) for s in status],
                             [(1, versions.STATE.AVAILABLE), (2, versions.STATE.END)])
            self.assertEqual(status[0].status.error_code, versions.OK)
            self.assertNotEqual(status[1].status.error_code, versions.OK)
            self.assertIn("version 2 failed to load", status[1].status.error_message)
            with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_api_port}/v1/models/"
                                        "tiny/versions/2", timeout=30) as reply:
                rest_status = json.loads(reply.read())["model_version_status"][0]["status"]
            self.assertNotEqual(rest_status["error_code"], "OK")
            self.assertIn("version 2 failed to load", rest_status["error_message"])


class BatchingTest(tf.test.TestCase):

    def test_concurrent_same_shape_requests_run_as_one_batch(self):
        local = tf.saved_model.load(VERSION_1).signatures
        rng = np.random.default_rng(2)
        requests = [rng.integers(0, 256, (1, 12, 12, 3), dtype=np.uint8) for _ in range(6)]
        requests += [rng.integers(0, 256, (2, 9, 10, 3), dtype=np.uint8) for _ in range(2)]
        batching = BatchingOptions(max_batch_size=8, batch_timeout_micros=300_000,
                                   num_batch_threads=1)
        with server_lib.ModelServer({"tiny": _model_dir(VERSION_1)}, port=0,
                                    host="127.0.0.1", poll_wait_seconds=0,
                                    batching=batching) as server, \
                grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            calls = [(_request(images=p), p) for p in requests]
            calls.append((_request("translate_encoded",
                                   image_bytes=np.array([b"not an image"], dtype=object)), None))
            calls.append((_request("translate_encoded", image_bytes=np.array(
                [tf.io.encode_png(requests[0][0]).numpy()], dtype=object)), None))

            def call(item):
                try:
                    return stub.Predict(item[0], timeout=60)
                except grpc.RpcError as error:
                    return error

            sizes = server.sources["tiny"].get().batch_sizes()
            warmup = dict(sizes["serving_default"])  # the warm-up request on load
            with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
                responses = list(pool.map(call, calls))
        for (_, pixels), response in zip(calls[:8], responses[:8]):
            # Batched on the server, one by one here: other batch shapes may pick other
            # oneDNN kernels, so a value at a rounding boundary may land one level off.
            self.assertAllClose(
                tf.make_ndarray(response.outputs[OUTPUT]).astype(np.int16),
                local["serving_default"](images=tf.constant(pixels))[OUTPUT].numpy().astype(
                    np.int16), rtol=0, atol=1)
        self.assertEqual(responses[8].code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIsInstance(responses[9], predict_pb2.PredictResponse)
        batches = sizes["serving_default"] - collections.Counter(warmup)
        self.assertGreater(max(batches), 1)
        self.assertEqual(sum(k * n for k, n in batches.items()), 6 + 2 * 2)


def _slow_request(port, seconds_per_byte, most_bytes):
    """Sends a request line and the start of a header, then one more byte of it every
    `seconds_per_byte` until the server answers or `most_bytes` were sent -> (bytes sent,
    the answer's status, its JSON), both None without an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /v1/models/tiny HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for sent in range(most_bytes):
            readable, _, _ = select.select([sock], [], [], seconds_per_byte)
            if readable:
                break
            sock.sendall(b"a")
        else:
            return most_bytes, None, None
        response = http.client.HTTPResponse(sock)
        response.begin()
        return sent, response.status, json.loads(response.read())


class RestConnectionsTest(tf.test.TestCase):
    """Clients that send slowly or open many connections, against a REST port with two
    workers and a model without versions (whose status is answered at once)."""

    LIMIT = 10

    def setUp(self):
        super().setUp()
        self.server = server_lib.ModelServer(
            {"tiny": tempfile.mkdtemp()}, port=0, rest_api_port=0, poll_wait_seconds=-1,
            rest_api_num_threads=2, rest_api_timeout_seconds=2.0,
            rest_api_max_connections_per_client=self.LIMIT).start()
        self.url = f"http://127.0.0.1:{self.server.rest_api_port}/v1/models/tiny"
        self.addCleanup(self.server.stop, 0)

    def _get(self):
        try:
            with urllib.request.urlopen(self.url, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def test_a_request_that_arrives_a_byte_at_a_time_gets_408_at_its_deadline(self):
        # 100 bytes at 0.1 s each would take 10 s; each byte would restart a per-byte timeout.
        sent, status, body = _slow_request(self.server.rest_api_port, 0.1, 100)
        self.assertLess(sent, 100)
        self.assertEqual(status, 408)
        self.assertRegex(body["error"], r"^the request did not arrive within 2 s \(\d+ bytes "
                                        r"of it did: its request line, headers and body")

    def test_slow_clients_hold_no_worker_and_one_client_holds_few_connections(self):
        slow = [socket.create_connection(("127.0.0.1", self.server.rest_api_port), timeout=30)
                for _ in range(self.LIMIT - 1)]
        try:
            for sock in slow:
                sock.sendall(b"GET /v1/models/tiny HTTP/1.1\r\nX-Slow: ")
            # More slow connections than workers, and other requests are still answered.
            self.assertEqual(self._get(), (200, {"model_version_status": []}))
            slow.append(socket.create_connection(("127.0.0.1", self.server.rest_api_port)))
            status, body = self._get()  # one connection over the limit of this address
            self.assertEqual(status, 503)
            self.assertEqual(body["error"], f"this client already has {self.LIMIT} connections "
                                            "open (--rest_api_max_connections_per_client)")
        finally:
            for sock in slow:
                sock.close()


class BudgetTest(tf.test.TestCase):
    """A server whose in-flight memory budget is 16 MiB: what can never fit is refused at
    once; what finds no room waits within its deadline and is never run. (16 MiB: on a CPU
    where TensorFlow runs without oneDNN, as on AVX2 machines, every call of even the tiny
    model holds 3 MiB or more of Eigen's scratch memory, so 8x8 images need that much.)"""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = server_lib.ModelServer(
            {"tiny": _model_dir(VERSION_1)}, port=0, rest_api_port=0, poll_wait_seconds=0,
            batching=BatchingOptions(num_batch_threads=1), rest_api_timeout_seconds=1.0,
            max_inflight_memory_bytes=16 << 20, max_concurrent_rpcs=2).start()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.server.port}", options=UNLIMITED)
        cls.predict = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel).Predict
        cls.url = f"http://127.0.0.1:{cls.server.rest_api_port}/v1/models/tiny:predict"

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop(grace=0)
        super().tearDownClass()

    def _rest(self, pixels):
        try:
            urllib.request.urlopen(urllib.request.Request(
                self.url, data=json.dumps({"instances": pixels.tolist()}).encode()), timeout=60)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())["error"]

    def _over_the_budget(self, width=None):
        """The smallest square image (or SIDE x `width` one) whose estimated cost exceeds the
        whole budget: the estimate is the server's, measured per machine at load."""
        servable = self.server.sources["tiny"].get()
        for side in range(256, 8193, 256):
            pixels = np.zeros([1, side, width or side, 3], np.uint8)
            if (servable.cost("serving_default", pixels[0, ..., 0].size, {INPUT: pixels})
                    > self.server.budget.total_bytes):
                return pixels
        self.fail("no image up to 8192 pixels a side is over the budget")

    def test_a_request_larger_than_the_whole_budget_is_refused_at_once(self):
        pixels = self._over_the_budget()
        with self.assertRaises(grpc.RpcError) as raised:
            self.predict(_request(images=pixels), timeout=60)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertRegex(raised.exception.details(), r"the request needs about [\d.]+ MiB of "
                                                     r"memory, more than the whole in-flight "
                                                     r"budget of 16\.0 MiB "
                                                     r"\(--max_inflight_memory_mb\)")
        status, error = self._rest(self._over_the_budget(width=256))  # a JSON body of MiBs
        self.assertEqual(status, 413)
        self.assertIn("(--max_inflight_memory_mb)", error)

    def test_grpc_calls_past_the_concurrency_limit_are_refused_at_once(self):
        budget = self.server.budget
        pixels = np.zeros([1, 8, 8, 3], np.uint8)
        with budget.admit(budget.total_bytes, admission.Call.within(60)):
            waiting = [self.predict.future(_request(images=pixels), timeout=3)
                       for _ in range(2)]  # both wait for room in the budget
            time.sleep(0.5)
            with self.assertRaises(grpc.RpcError) as raised:
                self.predict(_request(images=pixels), timeout=30)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("Concurrent RPC limit exceeded", raised.exception.details())
        for future in waiting:  # admitted once the budget is free, or out of time
            self.assertIn(future.code(), (grpc.StatusCode.OK,
                                          grpc.StatusCode.RESOURCE_EXHAUSTED,
                                          grpc.StatusCode.DEADLINE_EXCEEDED))

    def test_a_body_announced_but_not_sent_holds_only_what_arrived(self):
        budget = self.server.budget
        with socket.create_connection(("127.0.0.1", self.server.rest_api_port)) as sock:
            sock.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nContent-Length: "
                         + str(3 << 20).encode() + b"\r\n\r\n" + b"[" * 100)
            for _ in range(400):
                if budget.in_use >= 100:
                    break
                time.sleep(0.005)
            # The 100 bytes that came (and what the tests before may hold a moment longer),
            # not the 3 MiB announced: others still fit.
            self.assertBetween(budget.in_use, 100, 1 << 20)
            self.assertIsNone(self._rest(np.zeros([1, 8, 8, 3], np.uint8)))  # answered 200
        for _ in range(400):  # the server notices the close (or the deadline) and lets go
            if not budget.in_use:
                break
            time.sleep(0.005)
        self.assertEqual(budget.in_use, 0)

    def test_a_request_that_finds_no_room_by_its_deadline_is_never_run(self):
        budget = self.server.budget
        sizes = self.server.sources["tiny"].get().batch_sizes()["serving_default"]
        before = sizes.copy()
        pixels = np.zeros([1, 8, 8, 3], np.uint8)
        # As if others held it all. Taken by admission, whose wait ends when the requests of
        # the tests before have let go (the server may still be closing the last one when
        # its client has its answer), within a bounded time.
        with budget.admit(budget.total_bytes, admission.Call.within(60)):
            with self.assertRaises(grpc.RpcError) as raised:
                self.predict(_request(images=pixels), timeout=0.5)
            # The server gives up at the deadline, naming the limit, unless the client's own
            # timer is first.
            self.assertIn(raised.exception.code(), (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                                    grpc.StatusCode.DEADLINE_EXCEEDED))
            status, error = self._rest(pixels)  # REST's deadline: --rest_api_timeout_in_ms
            self.assertEqual(status, 429)
            self.assertRegex(error, r"requests in flight hold 16\.0 MiB of the 16\.0 MiB budget "
                                    r"\(--max_inflight_memory_mb\); retry later")
        self.assertEqual(sizes, before)  # neither reached the model
        response = self.predict(_request(images=pixels), timeout=60)
        self.assertEqual(tf.make_ndarray(response.outputs[OUTPUT]).shape, (1, 8, 8, 3))
        self.assertEqual(sizes - before, collections.Counter({1: 1}))
        self.assertEqual(budget.in_use, 0)


class VersionPollTest(tf.test.TestCase):

    def test_polling_goes_on_past_a_damaged_version_and_an_out_of_range_name(self):
        model_dir = _model_dir(VERSION_1)
        _break_version(model_dir, 2)
        os.symlink(os.path.join(model_dir, "nowhere"), os.path.join(model_dir, "2", "dangling"))
        _break_version(model_dir, 99999999999999999999)  # over int64: passed over
        with server_lib.ModelServer({"tiny": model_dir}, port=0, host="127.0.0.1",
                                    rest_api_port=0, poll_wait_seconds=0.05) as server, \
                grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            models = model_service_pb2_grpc.ModelServiceStub(channel)

            def status():
                return [(s.version, s.state, s.status.error_message)
                        for s in models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
                            model_spec={"name": "tiny"}), timeout=30).model_version_status]

            # Bounded: version 2 uses up its attempts within a few polls.
            for _ in range(1200):
                if "attempt 6 of 6" in status()[-1][2]:
                    break
                time.sleep(0.05)
            self.assertRegex(status()[-1][2], r"version 2 failed to load .*attempt 6 of 6")
            # A fixed newer version comes after: the poller is still there to load it.
            shutil.copytree(VERSION_2, os.path.join(model_dir, ".staging-3"))
            os.rename(os.path.join(model_dir, ".staging-3"), os.path.join(model_dir, "3"))
            for _ in range(1200):
                if server.sources["tiny"].get().version == 3:
                    break
                time.sleep(0.05)
            self.assertEqual([(v, state) for v, state, _ in status()],
                             [(1, versions.STATE.END), (2, versions.STATE.END),
                              (3, versions.STATE.AVAILABLE)])
            with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_api_port}/v1/models/"
                                        "tiny", timeout=30) as reply:
                rest_status = json.loads(reply.read())["model_version_status"]
            self.assertEqual([s["version"] for s in rest_status], ["1", "2", "3"])
