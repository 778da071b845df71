"""tfattncut.serving.servable: what a request costs, measured when a version loads; models
whose outputs lose the batch dimension under batching; requests whose client has gone are
not run; and a batcher that no batch can stop."""
import collections
import concurrent.futures
import dataclasses
import os
import tempfile
import threading
import time

import grpc
import numpy as np
import tensorflow as tf

from tests.serving.servingdata import export_tiny_model, save_function_model
from tfattncut.serving.admission import Call
from tfattncut.serving.export import BatchingOptions
from tfattncut.serving.servable import Servable, run_arrays
from tfattncut.serving.validation import ServingError

IMAGES = [tf.TensorSpec([None, None, None, 3], tf.uint8)]
ROWS = [tf.TensorSpec([None, 4], tf.float32)]  # no image: its cost cannot be measured
# Requests wait this long for company, so that concurrent ones meet in one batch.
WINDOW = BatchingOptions(batch_timeout_micros=300_000, num_batch_threads=1)


def setUpModule():
    global ROOT, TINY
    ROOT = tempfile.mkdtemp()
    TINY = export_tiny_model(ROOT).path


def _model(name, function, signature):
    return save_function_model(os.path.join(ROOT, name), function, signature)


def _concurrently(call, count):
    """call(i) for i < count in as many threads; returns each result or ServingError."""
    def attempt(i):
        try:
            return call(i)
        except ServingError as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(attempt, range(count)))


class CostTest(tf.test.TestCase):

    def test_each_image_signature_is_measured_and_costs_grow_with_the_pixels(self):
        servable = Servable("tiny", 1, TINY)
        self.assertCountEqual(servable.costs, ["serving_default", "translate_float",
                                               "translate_encoded"])
        for name, cost in servable.costs.items():
            with self.subTest(name):
                self.assertTrue(cost.measured)
                # At least the float32 copy of an RGB pixel (12 bytes), at most what 4-channel
                # float32 activations of ~200 layers could hold.
                self.assertBetween(cost.bytes_per_pixel, 12, 4 * 4 * 200)
                self.assertGreater(cost.seconds_per_pixel, 0)
        small = {"images": np.zeros([1, 64, 64, 3], np.uint8)}
        large = {"images": np.zeros([1, 128, 128, 3], np.uint8)}
        per_pixel = servable.costs["serving_default"].bytes_per_pixel
        growth = (servable.cost("serving_default", 128 * 128, large)
                  - servable.cost("serving_default", 64 * 64, small))
        # The measured slope with the 25 % margin, and three copies of 3 more bytes a pixel.
        self.assertAllClose(growth, (1.25 * per_pixel + 9) * (128 * 128 - 64 * 64), rtol=1e-6)
        servable.close()

    def test_a_signature_of_fixed_height_and_width_loads_with_no_cost_per_pixel(self):
        # Its images have the same pixels at every calibration side: no slope to measure.
        path = _model("fixed_size", lambda images: {"translated": images},
                      [tf.TensorSpec([None, 64, 64, 3], tf.uint8)])
        servable = Servable("fixed_size", 1, path)
        cost = servable.costs["serving_default"]
        self.assertTrue(cost.measured)
        self.assertEqual(cost.bytes_per_pixel, 0.0)
        servable.close()


class BatchDimensionTest(tf.test.TestCase):

    def test_outputs_without_one_row_per_input_row_fail_the_load_with_batching(self):
        models = {
            "a scalar": (_model("scalar", lambda images: {
                "total": tf.reduce_sum(tf.cast(images, tf.float32))}, IMAGES), r"total: \[\]"),
            "the first row": (_model("first_row", lambda images: {"translated": images[:1]},
                                     IMAGES), r"translated: \[1, 128, 128, 3\]")}
        for name, (path, shapes) in models.items():
            with self.subTest(name):
                with self.assertRaisesRegex(ValueError, f"answers 2 input rows with outputs "
                                                        f"of shapes {shapes}: with "
                                                        "--enable_batching every output"):
                    Servable(name, 1, path, batching=BatchingOptions())
                Servable(name, 1, path).close()  # unbatched, the outputs are the client's

    def test_a_batch_whose_outputs_lose_rows_fails_fast_and_the_batcher_runs_on(self):
        servable = Servable("scalar", 1, _model("rows_scalar", lambda x: {
            "total": tf.reduce_sum(x)}, ROWS), batching=WINDOW)
        self.assertFalse(servable.costs["serving_default"].measured)
        rows = np.ones([1, 4], np.float32)
        for round_ in range(2):  # the second round is served by the same threads
            results = _concurrently(lambda _: run_arrays(
                servable, "serving_default", {"x": rows}, Call.within(60)), 8)
            for result in results:
                with self.subTest(round=round_):
                    self.assertIsInstance(result, ServingError)
                    self.assertEqual(result.code, grpc.StatusCode.INVALID_ARGUMENT)
                    self.assertRegex(result.message, r"output 'total' has shape \[\] for 1 "
                                                     r"input row\(s\)")
        servable.close()

    def test_a_batch_that_loses_rows_is_rerun_request_by_request(self):
        servable = Servable("first_row", 1, _model("rows_first", lambda x: {
            "y": x[:1] * 2}, ROWS), batching=WINDOW)
        results = _concurrently(lambda i: run_arrays(
            servable, "serving_default", {"x": np.full([1 + (i == 0), 4], i, np.float32)},
            Call.within(60)), 4)
        self.assertIsInstance(results[0], ServingError)  # two rows in, one out
        self.assertRegex(results[0].message, r"shape \[1, 4\] for 2 input row")
        for i, result in enumerate(results[1:], start=1):
            self.assertAllEqual(result["y"], np.full([1, 4], 2 * i, np.float32))
        servable.close()


class AbandonedRequestTest(tf.test.TestCase):

    def test_requests_whose_client_has_gone_are_not_run(self):
        servable = Servable("tiny", 1, TINY, batching=WINDOW)
        pixels = {"images": np.zeros([1, 8, 8, 3], np.uint8)}
        gone = threading.Event()
        threading.Timer(0.05, gone.set).start()  # while it waits for company in the batcher
        cases = [(Call(cancelled=gone.is_set), "CANCELLED"),
                 (Call(deadline=time.monotonic() - 1), "DEADLINE_EXCEEDED")]
        for call, code in cases:
            with self.subTest(code):
                with self.assertRaises(ServingError) as raised:
                    run_arrays(servable, "serving_default", pixels, call)
                self.assertEqual(raised.exception.code, getattr(grpc.StatusCode, code))
        # As if a pixel took a second: 64 of them cannot end within 30 s, so they never start.
        measured = servable.costs["serving_default"]
        servable.costs["serving_default"] = dataclasses.replace(measured, seconds_per_pixel=1.0)
        with self.assertRaisesRegex(ServingError, r"would take at least 64\.0 s to run \(64 "
                                                  r"pixels at the rate measured when the version "
                                                  r"loaded\), more than the [23]\d\.\d s left"):
            run_arrays(servable, "serving_default", pixels, Call.within(30))
        servable.costs["serving_default"] = measured
        # None reached the model, and nothing of the budget is left held.
        self.assertEqual(servable.batch_sizes()["serving_default"], collections.Counter())
        self.assertEqual(servable.budget.in_use, 0)
        run_arrays(servable, "serving_default", pixels, Call.within(60))
        self.assertEqual(servable.batch_sizes()["serving_default"], collections.Counter({1: 1}))
        servable.close()
