"""One-process translation (launch.translate's path) versus the bulk pipeline on the
embedded runner and the reference's PyTorch path, on the same images: images/s, GFLOP/s,
its share of the machine's matmul peak, and peak memory.

Each row is measured in its own process (peak memory is a per-process high-water mark) and
end to end: loading the model, reading, translating and writing every image; a pipeline row
includes Beam's start-up and one model load per worker. GFLOP per image counts the
generator's convolutions at the image size (`training.benchmark.count_flops` on the forward
graph), so GFLOP/s is model-FLOP utilisation, not a hardware counter; the peak is
`machine.matmul_peak_gflop_per_s`, measured by the same process that prepares the rows.

`profile_layers` says where a frame's time goes: the generator one layer at a time.
"""
import json
import os
import resource
import subprocess
import time

import numpy as np
import tensorflow as tf

from tfattncut.bulk import pipeline
from tfattncut.bulk.files import Layout
from tfattncut.checkpoints import make_checkpoint
from tfattncut.inference import translate
from tfattncut.methods import method_class
from tfattncut.methods.base import PROBE_SHAPE
from tfattncut.models.generator import GENERATOR_BLOCKS, ResnetBlock, build_generator
from tfattncut.serving.export import export
from tfattncut.training.benchmark import count_flops
from tfattncut.translation import translate_files

TRANSLATE = "translate"
# The reference's test.py path in PyTorch (batch 1), run by an interpreter that has torch.
TORCH_REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "launch", "torch_reference.py")


def prepare(root, config, height, width, count, seed=0):
    """Writes under ROOT a run of `config`'s untrained translator (run/), its export
    (saved_models/bench/1) and `count` smooth random height x width PNGs (images/); returns
    the translator's GFLOP per image."""
    translator, trackables = method_class(config.model).build_translator(config, "AtoB")
    run_dir = os.path.join(root, "run")
    make_checkpoint(**trackables).save(os.path.join(run_dir, "checkpoints", "ckpt"))
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        f.write(config.to_json())
    export(run_dir, "bench", os.path.join(root, "saved_models"), version=1)
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"))
    for i in range(count):
        coarse = rng.uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
        pixels = tf.cast(tf.image.resize(coarse, [height, width])[0], tf.uint8)
        tf.io.write_file(os.path.join(root, "images", f"{i:04d}.png"), tf.io.encode_png(pixels))
    forward = tf.function(lambda images: translate(translator, images))
    graph = forward.get_concrete_function(tf.TensorSpec([1, height, width, 3])).graph
    return sum(count_flops(graph).values()) / 1e9


def _peak_memory_mb():
    """The largest peak resident set of this process and of its finished children (MiB)."""
    return max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def measure(root, row):
    """Runs one row on ROOT (from `prepare`): TRANSLATE, or the pipeline with `row` local
    workers; returns {path, workers, images, seconds, images_per_s, peak_memory_mb}."""
    images = os.path.join(root, "images")
    count = len(os.listdir(images))
    start = time.perf_counter()
    if row == TRANSLATE:
        translate_files(os.path.join(root, "run"), images, os.path.join(root, "out_translate"))
        path, workers = TRANSLATE, 1
    else:
        workers = int(row)
        options = pipeline.local_options(workers)
        summary = pipeline.run(os.path.join(root, "saved_models", "bench", "1"),
                               Layout(os.path.join(images, "*.png"),
                                      os.path.join(root, f"out_beam{workers}")), options)
        if summary.translated != count:
            raise RuntimeError(f"the pipeline translated {summary.translated} of {count} "
                               f"images: {summary}")
        path = f"beam {options['direct_running_mode']}"
    seconds = time.perf_counter() - start
    return {"path": path, "workers": workers, "images": count, "seconds": seconds,
            "images_per_s": count / seconds, "peak_memory_mb": _peak_memory_mb()}


def measure_reference(root, python, config):
    """The reference's single-image path (launch/torch_reference.py) run by PYTHON, an
    interpreter with torch, on ROOT's images with `config`'s generator width and depth; a
    row like `measure`'s."""
    blocks = GENERATOR_BLOCKS.get(config.netG)
    if blocks is None:
        raise ValueError(f"--netG={config.netG}: the reference row has the ResNet generators "
                         f"only ({', '.join(GENERATOR_BLOCKS)})")
    command = [python, TORCH_REFERENCE, f"--input={os.path.join(root, 'images')}",
               f"--output={os.path.join(root, 'out_reference')}", f"--ngf={config.ngf}",
               f"--blocks={blocks}"]
    result = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
    row = json.loads(result.stdout.strip().splitlines()[-1])
    return {"path": "reference (PyTorch, test.py)", "workers": 1, **row,
            "images_per_s": row["images"] / row["seconds"]}


def format_table(rows, gflop_per_image, height, width, peak_gflop_per_s):
    """A Markdown table of `measure` rows, with GFLOP/s, its share of the matmul peak and the
    speed relative to row 1."""
    lines = [f"{height}x{width}, {gflop_per_image:.1f} GFLOP per image (end to end: model "
             f"load, decode, translate, encode, write); float32 matmul peak "
             f"{peak_gflop_per_s:.0f} GFLOP/s", "",
             "| path | workers | images | seconds | images/s | GFLOP/s | % of matmul peak | "
             "peak MiB (largest process) | vs first |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gflop_per_s = r["images_per_s"] * gflop_per_image
        lines.append(f"| {r['path']} | {r['workers']} | {r['images']} | {r['seconds']:.1f} | "
                     f"{r['images_per_s']:.3f} | {gflop_per_s:.1f} | "
                     f"{100 * gflop_per_s / peak_gflop_per_s:.0f} | "
                     f"{r['peak_memory_mb']:.0f} | "
                     f"{r['images_per_s'] / rows[0]['images_per_s']:.2f} |")
    return "\n".join(lines)


def profile_layers(config, height, width, repeats=2):
    """`config`'s generator on one random height x width image, each layer timed on its own
    in a tf.function (graph mode, as translate runs the whole), best of `repeats` runs after
    a warm-up -> ({kind: {"layers", "seconds", "gflop"}}, seconds of the whole forward pass).

    A kind is the layer type with its kernel, channels and input size; the residual blocks'
    layers and their sums are their own kinds. One by one the layers take longer than the
    whole pass (timed once after a warm-up): each call allocates its output anew and loses
    what the whole graph shares across layers (50 s against 40 s at 1052x1914), so each
    kind's share of the time is indicative; its GFLOP/s is what that layer achieves alone."""
    generator = build_generator(config)
    generator(tf.zeros(PROBE_SHAPE))
    image = tf.random.uniform([1, height, width, 3], -1, 1, seed=0)
    kinds = {}

    def timed(function, what, *inputs):
        graph_function = tf.function(function)
        graph = graph_function.get_concrete_function(*inputs).graph
        gflop = sum(count_flops(graph).values()) / 1e9
        output = graph_function(*inputs)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            output = graph_function(*inputs)
            output.numpy()
            seconds.append(time.perf_counter() - start)
        x = inputs[0]
        kind = (f"{what}, {x.shape[-1]}->{output.shape[-1]} channels, "
                f"{x.shape[1]}x{x.shape[2]} in")
        entry = kinds.setdefault(kind, {"layers": 0, "seconds": 0.0, "gflop": 0.0})
        entry["layers"] += 1
        entry["seconds"] += min(seconds)
        entry["gflop"] += gflop
        return output

    def name_of(layer):
        kernel = getattr(layer, "kernel_size", None)
        return type(layer).__name__ + (f" {kernel[0]}x{kernel[1]}" if kernel else "")

    x = image
    for layer in generator.layer_list:
        if isinstance(layer, ResnetBlock):
            y = x
            for inner in layer.body:
                y = timed(inner, f"residual block: {name_of(inner)}", y)
            x = timed(tf.add, "residual block: sum", x, y)
        else:
            x = timed(layer, name_of(layer), x)
    whole = tf.function(generator)
    whole(image).numpy()
    start = time.perf_counter()
    whole(image).numpy()
    return kinds, time.perf_counter() - start


def format_layer_profile(kinds, whole_seconds, height, width, peak_gflop_per_s):
    """A Markdown table of `profile_layers`, slowest kind first."""
    total = sum(entry["seconds"] for entry in kinds.values())
    gflop = sum(entry["gflop"] for entry in kinds.values())
    lines = [f"{height}x{width}: the layers take {total:.1f} s one by one, the whole forward "
             f"pass {whole_seconds:.1f} s; {gflop:.0f} GFLOP, {gflop / whole_seconds:.1f} "
             f"GFLOP/s overall; float32 matmul peak {peak_gflop_per_s:.0f} GFLOP/s", "",
             "| layer kind | layers | seconds | % of time | GFLOP | GFLOP/s | "
             "% of matmul peak |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, entry in sorted(kinds.items(), key=lambda item: -item[1]["seconds"]):
        rate = entry["gflop"] / entry["seconds"]
        rates = (f"{rate:.1f} | {100 * rate / peak_gflop_per_s:.0f}" if entry["gflop"]
                 else "- | -")  # padding, normalisation, activations: memory-bound
        lines.append(f"| {kind} | {entry['layers']} | {entry['seconds']:.2f} | "
                     f"{100 * entry['seconds'] / total:.1f} | {entry['gflop']:.1f} | "
                     f"{rates} |")
    return "\n".join(lines)
