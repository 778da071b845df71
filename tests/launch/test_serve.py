"""launch.serve as a process: serves a models.config, answers Predict, stops on SIGTERM."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.servingdata import export_tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServeCLITest(tf.test.TestCase):

    def test_serves_the_models_config_and_stops_gracefully_on_sigterm(self):
        export_dir = export_tiny_model(tempfile.mkdtemp()).export_dir
        process = subprocess.Popen(
            [sys.executable, "-m", "launch.serve", "--port=0", "--host=127.0.0.1",
             f"--model_config_file={os.path.join(export_dir, 'models.config')}",
             "--enable_batching", "--file_system_poll_wait_seconds=0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines, port, deadline = [], None, time.monotonic() + 120
            while port is None and time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line)
                match = re.search(r"Serving gRPC on 127.0.0.1:(\d+)", line)
                port = int(match.group(1)) if match else None
            self.assertIsNotNone(port, "".join(lines))
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "tiny"
            request.inputs["images"].CopyFrom(
                tf.make_tensor_proto(np.zeros([1, 10, 10, 3], np.uint8)))
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                    request, timeout=60)
            self.assertEqual(response.model_spec.version.value, 1)
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        self.assertEqual(process.returncode, 0, output)
        self.assertIn("Stopping: finishing running requests", output)
        self.assertIn("Stopped", output)
