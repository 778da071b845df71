"""The machine a number was measured on: one line naming it (CPU model, cores, vector units,
GPUs) and its float32 matmul peak.

Benchmarks print it and the study records it with every run, because oneDNN picks different
kernels on different CPUs (AVX2 vs AVX-512 vs AMX) and a timing means little without it.
"""
import os
import platform
import time

import tensorflow as tf

# CPU flags that change which oneDNN kernels run, in the order they are reported.
_VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def _cpu_model_and_flags(cpuinfo="/proc/cpuinfo"):
    """(model name, set of flags) of the first CPU in `cpuinfo`; (platform's name, {}) if
    the file is not there (macOS, Windows)."""
    model, cpu_flags = None, set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags":
                    cpu_flags = set(value.split())
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return model, cpu_flags


def describe(cpuinfo="/proc/cpuinfo"):
    """E.g. 'AMD EPYC, 2 cores (avx2, fma), no GPU'."""
    model, cpu_flags = _cpu_model_and_flags(cpuinfo)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    vector = [flag for flag in _VECTOR_FLAGS if flag in cpu_flags]
    text = f"{model}, {cores} cores" + (f" ({', '.join(vector)})" if vector else "")
    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    return text + (", GPU: " + ", ".join(gpus) if gpus else ", no GPU")


def matmul_peak_gflop_per_s(sizes=(1024, 1536, 2048, 3072), repeats=3):
    """The best float32 GFLOP/s of TensorFlow's square matmuls of these sizes on this
    machine's default device, each after one warm-up: the peak a benchmark states its GFLOP/s
    against (oneDNN's matmul is about the fastest any op gets here, so a model's share of it
    says how much the rest of its graph costs). The best of several sizes and repeats,
    because one size can be far below it on a shared or virtual machine (a 2-core EPYC VM:
    79 GFLOP/s at 4096, 140 at 1536, and 80 to 123 at 1024 from one run to the next)."""
    matmul = tf.function(tf.linalg.matmul)
    best = 0.0
    for size in sizes:
        a = tf.random.uniform([size, size], seed=0)
        b = tf.random.uniform([size, size], seed=1)
        matmul(a, b).numpy()
        for _ in range(repeats):
            start = time.perf_counter()
            matmul(a, b).numpy()
            best = max(best, 2 * size ** 3 / (time.perf_counter() - start) / 1e9)
    return best
