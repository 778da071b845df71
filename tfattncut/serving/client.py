"""A gRPC client of the exported signatures, for the embedded server and
`tensorflow_model_server` alike (tensorflow-serving-api stubs only).

UNAVAILABLE (server starting, restarting or briefly overloaded) is retried with exponential
backoff; every other error is final and raised with the server's message.
"""
import concurrent.futures
import os
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfattncut import output_folders, translation
from tfattncut.progress import Progress
from tfattncut.serving.export import (BYTES_INPUT, BYTES_OUTPUT, DEFAULT_SIGNATURE, INPUT,
                                      OUTPUT)
from tfattncut.serving.validation import DEFAULT_MAX_MESSAGE_BYTES
from tfattncut.translation import UnreadableImages


# Answers about the image of one request; every other answer is about the server or model.
PER_IMAGE_CODES = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


def call_with_retries(call, request, retries=5, backoff_seconds=0.2, sleep=time.sleep):
    """call(request), retrying UNAVAILABLE up to `retries` times after backoff·2^k seconds."""
    for attempt in range(retries + 1):
        try:
            return call(request)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == retries:
                raise
            sleep(backoff_seconds * 2 ** attempt)


class TranslationClient:
    """Translates images with a served model; thread-safe (one channel, many calls)."""

    def __init__(self, server, model_name, version=None, timeout_seconds=120.0, retries=5,
                 backoff_seconds=0.2, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
        self.model_name, self.version = model_name, version
        self.timeout_seconds, self.retries, self.backoff_seconds = \
            timeout_seconds, retries, backoff_seconds
        self._channel = grpc.insecure_channel(server, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def predict(self, signature_name, inputs):
        """inputs {name: ndarray} -> outputs {name: ndarray} of one signature."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature_name
        if self.version is not None:
            request.model_spec.version.value = self.version
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = call_with_retries(
            lambda r: self._stub.Predict(r, timeout=self.timeout_seconds), request,
            self.retries, self.backoff_seconds)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def translate_pixels(self, images):
        """uint8 [B, H, W, 3] -> uint8 [B, H, W, 3] (signature serving_default)."""
        return self.predict(DEFAULT_SIGNATURE, {INPUT: np.asarray(images, np.uint8)})[OUTPUT]

    def translate_encoded(self, contents):
        """Encoded image files (bytes) -> PNG bytes, one each (signature translate_encoded)."""
        outputs = self.predict("translate_encoded",
                               {BYTES_INPUT: np.array(list(contents), dtype=object)})
        return list(outputs[BYTES_OUTPUT])

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def output_paths(inputs, output, overwrite=False):
    """{input path: OUTPUT/STEM.png}, as launch.translate names them; refuses what it refuses
    (an OUTPUT that is not a folder or holds an input, inputs with one stem, and unless
    `overwrite` files already there)."""
    paths = translation.input_images(inputs)
    output_folders.check_output_folder("--output", output)
    translation.check_destinations(paths, output)
    targets = {path: translation.translation_path(output, path) for path in paths}
    output_folders.check_not_replacing("--output", output, targets.values(), overwrite)
    return targets


def infer_files(server, model_name, inputs, output, concurrency=1, overwrite=False,
                **client_options):
    """Sends each image file to the server (translate_encoded) and writes OUTPUT/STEM.png;
    `concurrency` requests in flight; files already there are refused unless `overwrite`.
    Returns the written paths in input order.

    An answer about one image (PER_IMAGE_CODES: undecodable, too many pixels) or a file that
    cannot be read does not stop the others: UnreadableImages at the end lists each such
    file. Any other error (no such model, server gone) stops the run. OUTPUT is made with
    the first translation.
    """
    if concurrency < 1:
        raise ValueError(f"--concurrency must be >= 1; got {concurrency}")
    targets = output_paths(inputs, output, overwrite)
    progress = Progress(len(targets), unit="image")
    failed = {}  # input path: why; written by the pool's threads, one key each

    def one(path):
        try:
            with open(path, "rb") as f:
                translated = client.translate_encoded([f.read()])[0]
        except OSError as error:
            failed[path] = f"{path}: {error.strerror}"
            return
        except grpc.RpcError as error:
            if error.code() not in PER_IMAGE_CODES:
                raise
            failed[path] = f"{path}: {server} answered {error.code().name}: {error.details()}"
            return
        os.makedirs(output, exist_ok=True)  # here: a run that writes nothing leaves no folder
        with open(targets[path], "wb") as f:
            f.write(translated)

    with TranslationClient(server, model_name, **client_options) as client, \
            concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(one, path) for path in targets]
        try:
            for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                future.result()
                progress.update(done)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    if failed:
        raise UnreadableImages([t for p, t in targets.items() if p not in failed],
                               {p: failed[p] for p in targets if p in failed}, output)
    return list(targets.values())
