"""Measures training-step time and peak memory, one configuration per process.

Peak memory is a per-process high-water mark (GPU: TF's allocator peak; CPU: the process's
maximum resident set), so comparing configurations needs one fresh process each: the
launcher runs `measure_training_step` in a subprocess per row.
"""
import resource
import statistics
import time

import tensorflow as tf

from tfattncut.methods import METHODS
from tfattncut.training.strategy import resolve_jit_compile


def peak_memory_mb():
    """Peak GPU allocator memory if a GPU is used, else the process's peak RSS, in MiB."""
    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_training_step(config, steps=5, warmup=2):
    """Mean wall time of `steps` training steps after `warmup` (compile) steps, on random
    [batch, crop, crop, 3] inputs (the data pipeline is not part of the step)."""
    method = METHODS[config.model](config)
    jit, _ = resolve_jit_compile(config.jit_compile, tf.distribute.get_strategy())
    step = tf.function(method.train_step, jit_compile=jit)
    shape = [config.batch_size, config.crop_size, config.crop_size, 3]
    batch = {k: tf.random.uniform(shape, -1, 1, seed=i) for i, k in enumerate("ab")}
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        losses, _ = step(batch, tf.constant([config.seed, i]))
        float(losses["G"])  # waits for the step to finish
        if i >= warmup:
            times.append(time.perf_counter() - start)
    mean = statistics.mean(times)
    return {
        "selector": config.selector, "model": config.model, "size": config.crop_size,
        "batch": config.batch_size, "jit": jit, "steps": steps, "step_s": mean,
        "step_s_std": statistics.stdev(times) if len(times) > 1 else 0.0,
        "images_per_s": config.batch_size / mean, "peak_memory_mb": peak_memory_mb(),
    }


def format_table(rows, baseline="random", key="selector"):
    """Markdown table of measure_training_step rows, with the step-time ratio to the row
    whose `key` ("selector" or "model") is `baseline`."""
    base = next((r["step_s"] for r in rows if r[key] == baseline), None)
    lines = ["| model | selector | size | batch | step (s) | ± | images/s | peak MiB | "
             f"vs {baseline} |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['step_s'] / base:.3f}" if base else "n/a"
        lines.append(f"| {r['model']} | {r['selector']} | {r['size']} | {r['batch']} | "
                     f"{r['step_s']:.3f} | {r['step_s_std']:.3f} | {r['images_per_s']:.2f} | "
                     f"{r['peak_memory_mb']:.0f} | {ratio} |")
    return "\n".join(lines)
