"""Serving latency and throughput: the exported SavedModel called in-process versus the
embedded server over loopback gRPC, without and with batching.

Every path runs the same signature (serving_default, uint8 [1, size, size, 3]) on the same
image; `concurrency` threads issue `requests` calls in all, after a warm-up call per thread.
"""
import concurrent.futures
import contextlib
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from tfattncut.config import Config
from tfattncut.methods import method_class
from tfattncut.serving.client import TranslationClient
from tfattncut.serving.export import (DEFAULT_SIGNATURE, INPUT, BatchingOptions, save_servable,
                                      warmup_image)
from tfattncut.serving.server import ModelServer

PATHS = ("in-process", "grpc", "grpc+batching")


def demo_config(size):
    """The demo preset's generator (resnet_6blocks, ngf 32), untrained, at `size`."""
    return Config(netG="resnet_6blocks", ngf=32, crop_size=size, load_size=size)


def _measure(call, requests, concurrency):
    """Latencies (s) of `requests` calls made by `concurrency` threads, and the wall time."""
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        def timed(_):
            start = time.perf_counter()
            call()
            return time.perf_counter() - start

        start = time.perf_counter()
        latencies = list(pool.map(timed, range(requests)))
    return latencies, time.perf_counter() - start


def run_serving_benchmark(size=256, requests=64, concurrencies=(1, 4, 16), config=None,
                          batching=BatchingOptions(), rounds=4):
    """Rows {path, concurrency, requests, p50_ms, p99_ms, images_per_s} for each path in
    PATHS and each concurrency. `config` picks the generator (default: demo_config).

    The paths take turns in `rounds` rounds per concurrency, so a change in the machine's
    load during the run (other processes) biases no path.
    """
    config = config or demo_config(size)
    translator, _ = method_class(config.model).build_translator(config, "AtoB")
    image = warmup_image(size)[np.newaxis]
    with tempfile.TemporaryDirectory(prefix="serving_benchmark_") as root, \
            contextlib.ExitStack() as stack:
        save_servable(translator, os.path.join(root, "1"), {"benchmark": True}, "bench", size)
        signature = tf.saved_model.load(os.path.join(root, "1")).signatures[DEFAULT_SIGNATURE]
        calls = {"in-process": lambda: signature(**{INPUT: tf.constant(image)})}
        for path, options in (("grpc", None), ("grpc+batching", batching)):
            server = stack.enter_context(ModelServer(
                {"bench": root}, port=0, host="127.0.0.1", poll_wait_seconds=0,
                batching=options))
            client = stack.enter_context(
                TranslationClient(f"127.0.0.1:{server.port}", "bench"))
            calls[path] = lambda client=client: client.translate_pixels(image)
        rows = []
        for concurrency in concurrencies:
            latencies = {path: [] for path in PATHS}
            walls = dict.fromkeys(PATHS, 0.0)
            for path in PATHS:  # warm-up: every thread of the pool once
                _measure(calls[path], concurrency, concurrency)
            # Each round keeps every thread busy: at least `concurrency` calls per round.
            turns = max(1, min(rounds, requests // concurrency))
            for turn in range(turns):
                share = requests // turns + (turn < requests % turns)
                for path in PATHS:
                    times, wall = _measure(calls[path], share, concurrency)
                    latencies[path] += times
                    walls[path] += wall
            rows += [_row(path, concurrency, latencies[path], walls[path]) for path in PATHS]
    return sorted(rows, key=lambda row: PATHS.index(row["path"]))


def _row(path, concurrency, latencies, wall):
    ms = np.array(latencies) * 1000
    return {"path": path, "concurrency": concurrency, "requests": len(latencies),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "images_per_s": len(latencies) / wall}


def format_table(rows):
    """A Markdown table of benchmark rows."""
    lines = ["| path | concurrency | requests | p50 ms | p99 ms | images/s |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['path']} | {r['concurrency']} | {r['requests']} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['images_per_s']:.2f} |" for r in rows]
    return "\n".join(lines)
