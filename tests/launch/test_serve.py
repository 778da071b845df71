"""launch.serve as a process: binds loopback by default, serves a models.config, answers
Predict with the SavedModel's output, and on SIGTERM finishes the requests in flight; what it
cannot serve (a port in use, a bad key, a missing model) is one line naming the flag."""
import concurrent.futures
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.servingdata import export_tiny_model, make_certificates, write_ssl_config
from tfattncut.serving.export import BatchingOptions

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Requests wait this long for company in the batcher: long enough to signal the server while
# they are in flight, whatever the machine's speed.
BATCH_WINDOW_SECONDS = 2.0


def _free_port():
    """A port free now (--rest_api_port=0 means no REST API, as in TF Serving)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Output:
    """A process's output lines, read by a thread so that a silent process cannot block the
    test past its deadline."""

    def __init__(self, process):
        self.lines = []
        self._queue = queue.Queue()
        self._reader = threading.Thread(
            target=lambda: [self._queue.put(line) for line in process.stdout], daemon=True)
        self._reader.start()

    def wait_for(self, pattern, seconds):
        """The first match of `pattern` in a line within `seconds`, or None."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.lines.append(self._queue.get(timeout=left))
            except queue.Empty:
                return None
            if match := re.search(pattern, self.lines[-1]):
                return match
        return None

    def text(self):
        """Everything the process wrote (call once it has exited)."""
        self._reader.join(timeout=30)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return "".join(self.lines)


class ServeCLITest(tf.test.TestCase):

    def test_predicts_and_finishes_requests_in_flight_on_sigterm(self):
        export = export_tiny_model(tempfile.mkdtemp())
        batching = os.path.join(export.export_dir, "slow_batching.config")
        with open(batching, "w") as f:
            f.write(BatchingOptions(batch_timeout_micros=int(BATCH_WINDOW_SECONDS * 1e6),
                                    num_batch_threads=1).to_text())
        process = subprocess.Popen(
            [sys.executable, "-m", "launch.serve", "--port=0", f"--rest_api_port={_free_port()}",
             f"--model_config_file={os.path.join(export.export_dir, 'models.config')}",
             "--enable_batching", f"--batching_parameters_file={batching}",
             "--file_system_poll_wait_seconds=0", "--grace_seconds=60"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output = _Output(process)
            match = output.wait_for(r"Serving gRPC on 127.0.0.1:(\d+), REST on 127.0.0.1:(\d+)",
                                    180)
            self.assertIsNotNone(match, "".join(output.lines))
            grpc_port, rest_port = (int(port) for port in match.groups())
            pixels = np.random.default_rng(0).integers(0, 256, (1, 12, 10, 3), dtype=np.uint8)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "tiny"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(pixels))
            rest_request = urllib.request.Request(
                f"http://127.0.0.1:{rest_port}/v1/models/tiny:predict",
                data=json.dumps({"instances": pixels.tolist()}).encode())
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, \
                    concurrent.futures.ThreadPoolExecutor(1) as pool:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                in_flight = stub.Predict.future(request, timeout=120)
                rest_in_flight = pool.submit(
                    lambda: json.loads(urllib.request.urlopen(rest_request, timeout=120).read()))
                time.sleep(BATCH_WINDOW_SECONDS / 3)  # both now wait in the batcher
                process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                response = in_flight.result()
                rest_reply = rest_in_flight.result()
                # Answered after the signal: they were still running when it came.
                self.assertGreater(time.monotonic() - signalled, BATCH_WINDOW_SECONDS / 6)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        output = output.text()
        self.assertEqual(process.returncode, 0, output)
        self.assertIn("Stopping: finishing running requests", output)
        self.assertIn("Stopped", output)
        self.assertEqual(response.model_spec.version.value, 1)
        want = tf.saved_model.load(export.path).signatures["serving_default"](
            images=tf.constant(pixels))["translated"].numpy()
        # The same SavedModel on the same machine, but the batcher ran both requests as one
        # batch of 2 and `want` is a batch of 1: other batch shapes may pick other oneDNN
        # kernels, so a value at a rounding boundary may land one level off.
        want = want.astype(np.int16)
        self.assertAllClose(tf.make_ndarray(response.outputs["translated"]).astype(np.int16),
                            want, rtol=0, atol=1)
        self.assertAllClose(np.array(rest_reply["predictions"], np.int16), want, rtol=0, atol=1)


    def test_sigterm_stops_it_within_the_grace_period_whatever_its_threads_wait_for(self):
        export = export_tiny_model(tempfile.mkdtemp())
        batching = os.path.join(export.export_dir, "endless_batching.config")
        with open(batching, "w") as f:  # a request would wait ten minutes for company
            f.write(BatchingOptions(batch_timeout_micros=600_000_000).to_text())
        process = subprocess.Popen(
            [sys.executable, "-m", "launch.serve", "--port=0",
             f"--model_base_path={os.path.dirname(export.path)}", "--model_name=tiny",
             "--enable_batching", f"--batching_parameters_file={batching}",
             "--file_system_poll_wait_seconds=0", "--grace_seconds=1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output = _Output(process)
            match = output.wait_for(r"Serving gRPC on 127.0.0.1:(\d+)", 180)
            self.assertIsNotNone(match, "".join(output.lines))
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "tiny"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros([1, 8, 8, 3],
                                                                            np.uint8)))
            with grpc.insecure_channel(f"127.0.0.1:{match.group(1)}") as channel:
                waiting = prediction_service_pb2_grpc.PredictionServiceStub(
                    channel).Predict.future(request, timeout=600)
                time.sleep(1)  # now in the batcher, for ten minutes
                process.send_signal(signal.SIGTERM)
                # Exits long before the request's ten minutes (the wait is bounded).
                process.wait(timeout=120)
                with self.assertRaises(grpc.RpcError) as raised:
                    waiting.result()
                self.assertIn(raised.exception.code(), (grpc.StatusCode.CANCELLED,
                                                        grpc.StatusCode.UNAVAILABLE))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.assertEqual(process.returncode, 0, output.text())
        self.assertIn("Stopped", output.text())


class ServeCLIErrorTest(tf.test.TestCase):

    def test_what_cannot_be_served_is_one_line_naming_the_flag(self):
        root = tempfile.mkdtemp()
        export = export_tiny_model(root)
        model = f"--model_base_path={os.path.dirname(export.path)}"
        pems = make_certificates(root)
        mismatched = write_ssl_config(os.path.join(root, "ssl.config"),
                                      dict(pems, server_key=pems["client_key"]), False)
        nowhere = os.path.join(root, "nowhere.config")
        with open(nowhere, "w") as f:
            f.write('model_config_list { config { name: "m" base_path: "/nonexistent/m" } }')
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            error = "launch.serve: error: "
            cases = {  # wanted message: flags
                f"{error}--port={port}: cannot bind the gRPC port": [model, f"--port={port}"],
                f"{error}--rest_api_port={port}: cannot bind the REST port 127.0.0.1:{port}: "
                "Address already in use": [model, "--port=0", f"--rest_api_port={port}"],
                f"{error}--ssl_config_file={mismatched}: gRPC cannot use server_key with "
                "server_cert": [model, "--port=0", f"--ssl_config_file={mismatched}"],
                f"{error}--model_config_file={nowhere}: model 'm': base_path '/nonexistent/m' "
                "is not a folder": [f"--model_config_file={nowhere}", "--port=0"],
                # gRPC would bind 70000 - 65536 without a word.
                "flag --port=70000: 70000 is not an integer in the range [0, 65535]":
                    [model, "--port=70000"],
                # gRPC takes it as a C int: OverflowError.
                "flag --max_message_mb=2048: 2048 is not an integer in the range [1, 2047]":
                    [model, "--port=0", "--max_message_mb=2048"],
            }
            for want, flags in cases.items():
                with self.subTest(want):
                    result = subprocess.run(
                        [sys.executable, "-m", "launch.serve", *flags,
                         "--file_system_poll_wait_seconds=-1"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
                    self.assertEqual(result.returncode, 1, result.stderr)
                    self.assertNotIn("Traceback", result.stderr)
                    self.assertIn(want, result.stderr)
                    self.assertNotIn("Serving", result.stdout)
