"""The REST port under load: 64 concurrent clients x 10 requests of a 64x64 image, each on a
new connection (the burst that http.server's listen backlog of 5 answered with connection
resets), over loopback. Every request must be answered correctly, while the server never
runs more worker threads than it was given."""
import base64
import concurrent.futures
import http.client
import json
import os
import tempfile
import threading
import urllib.request

import pytest
import tensorflow as tf

from tests.serving.servingdata import export_tiny_model
from tfattncut.serving.export import BYTES_OUTPUT, warmup_image
from tfattncut.serving.server import ModelServer

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

CLIENTS, REQUESTS_EACH = 64, 10
NUM_THREADS = 8  # fewer than the clients: the rest must wait in the backlog, not fail


class RestLoadTest(tf.test.TestCase):

    def test_64_concurrent_clients_get_every_answer(self):
        path = export_tiny_model(tempfile.mkdtemp()).path
        png = tf.io.encode_png(warmup_image(64)).numpy()
        want = tf.saved_model.load(path).signatures["translate_encoded"](
            image_bytes=tf.constant([png]))[BYTES_OUTPUT].numpy()[0]
        body = json.dumps({"signature_name": "translate_encoded",
                           "instances": [{"b64": base64.b64encode(png).decode()}]}).encode()
        peak, watching = [0], threading.Event()

        def watch():  # the REST workers' threads are named rest-worker_N
            while not watching.wait(0.005):
                peak[0] = max(peak[0], sum(thread.name.startswith("rest-worker")
                                           for thread in threading.enumerate()))

        with ModelServer({"tiny": os.path.dirname(path)}, port=0, host="127.0.0.1",
                         rest_api_port=0, poll_wait_seconds=0,
                         rest_api_num_threads=NUM_THREADS) as server:
            url = f"http://127.0.0.1:{server.rest_api_port}/v1/models/tiny:predict"
            start = threading.Barrier(CLIENTS)

            def client(_):
                start.wait(timeout=120)
                answers, failures = [], []
                for _ in range(REQUESTS_EACH):
                    try:
                        with urllib.request.urlopen(urllib.request.Request(url, data=body),
                                                    timeout=120) as reply:
                            prediction = json.loads(reply.read())["predictions"][0]
                        answers.append(base64.b64decode(prediction["b64"]))
                    except (OSError, http.client.HTTPException) as error:
                        failures.append(repr(error))
                return answers, failures

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                    results = list(pool.map(client, range(CLIENTS)))
            finally:
                watching.set()
                watcher.join()
        failures = [failure for _, failed in results for failure in failed]
        self.assertEqual(failures, [])
        answers = [answer for answered, _ in results for answer in answered]
        self.assertLen(answers, CLIENTS * REQUESTS_EACH)
        # Same SavedModel, same input, same machine: the PNG bytes are identical.
        self.assertTrue(all(answer == want for answer in answers))
        self.assertBetween(peak[0], 2, NUM_THREADS)
