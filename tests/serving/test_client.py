"""tfattncut.serving.client: retries, output naming, and files through a loopback server."""
import os
import tempfile

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.serving.servingdata import export_tiny_model
from tfattncut.serving import client as client_lib
from tfattncut.serving.server import ModelServer
from tfattncut.translation import UnreadableImages

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


class _RpcError(grpc.RpcError):
    def __init__(self, code):
        super().__init__()
        self._code = code

    def code(self):
        return self._code


class RetryTest(tf.test.TestCase):

    def test_unavailable_is_retried_with_exponential_backoff(self):
        answers = [_RpcError(grpc.StatusCode.UNAVAILABLE)] * 2 + ["ok"]
        sleeps = []

        def call(request):
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return (answer, request)

        self.assertEqual(client_lib.call_with_retries(call, "req", retries=3,
                                                      backoff_seconds=0.5,
                                                      sleep=sleeps.append), ("ok", "req"))
        self.assertEqual(sleeps, [0.5, 1.0])

    def test_other_errors_and_exhausted_retries_are_raised(self):
        def fails_with(code, counter):
            def call(request):
                counter.append(request)
                raise _RpcError(code)
            return call

        calls = []
        with self.assertRaises(grpc.RpcError) as raised:
            client_lib.call_with_retries(fails_with(grpc.StatusCode.INVALID_ARGUMENT, calls),
                                         "r", retries=3, sleep=lambda s: None)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertLen(calls, 1)
        calls = []
        with self.assertRaises(grpc.RpcError):
            client_lib.call_with_retries(fails_with(grpc.StatusCode.UNAVAILABLE, calls), "r",
                                         retries=2, sleep=lambda s: None)
        self.assertLen(calls, 3)


class InferFilesTest(tf.test.TestCase):

    def test_output_paths_never_overwrite_an_input(self):
        root = tempfile.mkdtemp()
        for name in ("a.png", "b.jpg"):
            Image.new("RGB", (8, 8)).save(os.path.join(root, name))
        with self.assertRaisesRegex(ValueError, f"folder {root} holds the input .*a.png"):
            client_lib.output_paths(root, root)
        targets = client_lib.output_paths(root, os.path.join(root, "out"))
        self.assertEqual(sorted(os.path.basename(t) for t in targets.values()),
                         ["a.png", "b.png"])
        Image.new("RGB", (8, 8)).save(os.path.join(root, "a.bmp"))
        with self.assertRaisesRegex(ValueError, "a.bmp and .*a.png -> a.png"):
            client_lib.output_paths(root, os.path.join(root, "out"))

    def test_an_output_that_is_a_file_is_refused_before_any_request(self):
        root = tempfile.mkdtemp()
        image = os.path.join(root, "a.png")
        Image.new("RGB", (8, 8)).save(image)
        taken = os.path.join(root, "out.png")
        Image.new("RGB", (8, 8)).save(taken)
        # No server listens there: the error must come before any request.
        for output in (taken, os.path.join(taken, "out")):
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"^--output={output}: {taken} exists and is not a "
                                        "folder"):
                client_lib.infer_files("127.0.0.1:1", "tiny", image, output)
        # Files already in the folder (an earlier run's, or a data set's under a mistyped
        # --output) are refused before any request, unless overwrite.
        output = os.path.join(root, "done")
        os.makedirs(output)
        Image.new("RGB", (8, 8)).save(os.path.join(output, "a.png"))
        with self.assertRaisesRegex(FileExistsError, f"^--output={output}: {output}/a.png "
                                    "exists; pass --overwrite"):
            client_lib.infer_files("127.0.0.1:1", "tiny", image, output)
        self.assertEqual(client_lib.output_paths(image, output, overwrite=True),
                         {image: os.path.join(output, "a.png")})
        # A mistyped --input: named, before any request or output folder.
        missing, output = os.path.join(root, "nowhere"), os.path.join(root, "new")
        with self.assertRaisesRegex(FileNotFoundError, f"^--input={missing} does not exist"):
            client_lib.infer_files("127.0.0.1:1", "tiny", missing, output)
        self.assertFalse(os.path.exists(output))

    def test_translates_a_folder_through_the_server(self):
        root = tempfile.mkdtemp()
        path = export_tiny_model(root).path
        local = tf.saved_model.load(path).signatures["translate_encoded"]
        inputs = os.path.join(root, "in")
        os.makedirs(inputs)
        rng = np.random.default_rng(0)
        sizes = {"odd.png": (13, 17), "even.jpg": (16, 24), "wide.png": (6, 40)}
        for name, (h, w) in sizes.items():
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                os.path.join(inputs, name))
        output = os.path.join(root, "out")
        with ModelServer({"tiny": os.path.dirname(path)}, port=0, host="127.0.0.1",
                         poll_wait_seconds=0) as server:
            written = client_lib.infer_files(f"127.0.0.1:{server.port}", "tiny", inputs,
                                             output, concurrency=2)
            with client_lib.TranslationClient(f"127.0.0.1:{server.port}", "tiny") as client:
                pixels = rng.integers(0, 256, (2, 9, 11, 3), dtype=np.uint8)
                self.assertEqual(client.translate_pixels(pixels).shape, (2, 9, 11, 3))
        self.assertEqual(sorted(os.path.basename(p) for p in written),
                         ["even.png", "odd.png", "wide.png"])
        for name, (h, w) in sizes.items():
            target = os.path.join(output, os.path.splitext(name)[0] + ".png")
            with open(target, "rb") as f:
                translated = f.read()
            with open(os.path.join(inputs, name), "rb") as f:
                want = local(image_bytes=tf.constant([f.read()]))["translated_bytes"][0]
            self.assertEqual(translated, want.numpy())
            self.assertEqual(Image.open(target).size, (w, h))

    def test_an_image_the_server_refuses_is_listed_and_the_others_are_written(self):
        root = tempfile.mkdtemp()
        path = export_tiny_model(root).path
        inputs = os.path.join(root, "in")
        os.makedirs(inputs)
        with open(os.path.join(inputs, "a_broken.png"), "wb") as f:
            f.write(b"not an image")  # sorted first: the images after it still go
        Image.new("RGB", (12, 12)).save(os.path.join(inputs, "b_good.png"))
        output = os.path.join(root, "out")
        with ModelServer({"tiny": os.path.dirname(path)}, port=0, host="127.0.0.1",
                         poll_wait_seconds=0) as server:
            address = f"127.0.0.1:{server.port}"
            with self.assertRaises(UnreadableImages) as caught:
                client_lib.infer_files(address, "tiny", inputs, output)
            # An error about the server or model is not per image: it stops the run.
            with self.assertRaises(grpc.RpcError) as not_found:
                client_lib.infer_files(address, "nope", inputs, os.path.join(root, "out2"))
        self.assertEqual(caught.exception.written, [os.path.join(output, "b_good.png")])
        broken = os.path.join(inputs, "a_broken.png")
        self.assertEqual(list(caught.exception.failed), [broken])
        self.assertRegex(caught.exception.failed[broken],
                         f"^{broken}: {address} answered INVALID_ARGUMENT: ")
        self.assertEqual(os.listdir(output), ["b_good.png"])
        self.assertEqual(not_found.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertFalse(os.path.exists(os.path.join(root, "out2")))  # nothing written
