"""Benchmarks, each printed as a Markdown table.

Training steps (the default; `--train` says so explicitly):
`python -m launch.benchmark --train --preset=cut,qsattn_global --size=256 --steps=N` measures
the mean training-step time, images/s, achieved GFLOP/s and peak memory of each preset
(configs/NAME.cfg) on this machine, in one run (one subprocess per row, so each peak is its
own), with the ratio to the first row. Without --preset, `--selectors=random,qs_global,...`
compares selectors of one configuration (`--flagfile=configs/cut.cfg`). Any config flag
(--batch_size, --jit_compile, --strategy, --ngf, ...) applies to every row and overrides the
preset's; each row runs the step as training does (every replica of --strategy, XLA as
--jit_compile resolves) and reports its one-time compile cost apart from the step time.
`--logical_cpus=N` splits the CPU into N devices, so that `--strategy=mirrored` has N
replicas on a machine without GPUs.
GFLOP counts the convolutions and matrix products of the traced step, forward and backward
(tfattncut.training.benchmark says exactly what counts).

Serving: `python -m launch.benchmark --serving --size=256 [--flagfile=...]` measures p50/p99
latency and throughput of the exported generator called in-process and through the embedded
gRPC server at concurrency 1, 4 and 16, with and without batching.

Bulk translation: `python -m launch.benchmark --bulk --size=HxW --images=N [--workers=1,4]
[--reference_python=PATH]` measures images/s, GFLOP/s (and its share of the float32 matmul
peak it measures first) and peak memory of the one-process translate path (launch.translate),
of the Beam pipeline (launch.bulk_translate) on the embedded runner with each --workers count
and, given an interpreter with torch, of the reference's single-image PyTorch path; end to
end, on the same N images and untrained weights (config flags pick the generator; the default
is CUT's full-size resnet_9blocks, ngf 64). `--bulk --size=HxW --profile_layers` says where
the one-process path's time goes: each generator layer timed on its own at HxW, grouped by
kind, with its GFLOP/s and share of the matmul peak.

Profiles: `python -m launch.benchmark --profile_top=RUN/logs` prints the ops with the most
self time in the profile a `launch.train --profile_steps=A,B` run wrote there.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import tensorflow as tf
from absl import app, flags

from tfattncut import cli, machine
from tfattncut import config as config_lib
from tfattncut.bulk import benchmark as bulk_benchmark
from tfattncut.serving import benchmark as serving_benchmark
from tfattncut.training import benchmark, profiling

config_lib.define_flags()
flags.DEFINE_list("selectors", ["random", "qs_global", "qs_local", "qs_local_global"],
                  "Selectors to compare (one row each) when no --preset is given.")
flags.DEFINE_list("preset", [],
                  "Compare these presets (configs/NAME.cfg) instead of selectors: one row each, "
                  "e.g. cut,qsattn_global or cut,cyclegan,dclgan,simdcl,uag.")
flags.DEFINE_alias("presets", "preset")
flags.DEFINE_string("size", "256", "Image size: N (square; sets --crop_size) or, for --bulk, "
                    "HxW.")
flags.register_validator("size", lambda value: re.fullmatch(r"[1-9]\d*(x[1-9]\d*)?", value),
                         "must be N or HxW, positive integers")
flags.DEFINE_integer("steps", 5, "Timed steps per row, after the warm-up steps.",
                     lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed steps first (tracing, compilation).",
                     lower_bound=0)
flags.DEFINE_bool("train", False, "Benchmark training steps (also the default without "
                  "--serving or --profile_top).")
flags.DEFINE_bool("serving", False, "Benchmark serving instead of training steps.")
flags.DEFINE_bool("bulk", False, "Benchmark bulk translation (one process versus the Beam "
                  "pipeline) instead of training steps.")
flags.DEFINE_integer("images", 8, "--bulk: images per row.", lower_bound=1)
flags.DEFINE_list("workers", ["1", str(os.cpu_count())], "--bulk: a pipeline row per local "
                  "worker count.")
flags.register_validator("workers", lambda values: all(re.fullmatch(r"[1-9]\d*", v)
                                                       for v in values),
                         "must be positive integers (local worker counts)")
flags.DEFINE_bool("profile_layers", False, "--bulk: time the generator one layer at a time "
                  "instead of the rows.")
flags.DEFINE_string("reference_python", "", "--bulk: an interpreter with torch; adds a row "
                    "for the reference's single-image PyTorch path (launch/torch_reference.py).")
flags.DEFINE_integer("requests", 64, "--serving: requests per path and concurrency.",
                     lower_bound=1)
flags.DEFINE_string("profile_top", "", "Print the top ops by self time of the TensorBoard "
                    "profile in this log folder (a run's logs/) instead of benchmarking.")
flags.DEFINE_integer("top", 20, "--profile_top: how many ops to list.", lower_bound=1)
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices before "
                     "measuring (0: leave it), e.g. 2 for --strategy=mirrored with 2 replicas "
                     "on a machine without GPUs.", lower_bound=0)
flags.DEFINE_bool("worker", False, "Internal: measure one row and print it as JSON.")
flags.DEFINE_string("bulk_dir", "", "Internal: --bulk's prepared folder.")
flags.DEFINE_string("bulk_row", "", "Internal: --bulk's row (translate or a worker count).")
FLAGS = flags.FLAGS
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def main(_argv):  # cli.run refuses positional arguments
    modes = [name for name in ("train", "serving", "bulk", "profile_top") if FLAGS[name].value]
    if len(modes) > 1:
        raise app.UsageError(f"choose one of --train, --serving, --bulk, --profile_top; got "
                             f"{', '.join('--' + m for m in modes)}")
    if FLAGS.profile_layers and not FLAGS.bulk:
        raise app.UsageError("--profile_layers profiles the bulk path: add --bulk --size=HxW")
    if not FLAGS.worker:
        print(f"Machine: {machine.describe()}")
    sides = [int(side) for side in FLAGS.size.split("x")]
    height, width = sides * 2 if len(sides) == 1 else sides
    if FLAGS.bulk:
        _bulk(height, width)
        return
    if height != width:
        raise app.UsageError(f"--size={FLAGS.size}: only --bulk takes HxW; give one side")
    size = height
    if FLAGS.profile_top:
        print(profiling.format_top_ops(profiling.top_ops(FLAGS.profile_top, FLAGS.top)))
        return
    if FLAGS.serving:
        rows = serving_benchmark.run_serving_benchmark(
            size=size, requests=FLAGS.requests, config=config_lib.from_flags(FLAGS))
        print(serving_benchmark.format_table(rows))
        return
    if FLAGS.worker:
        if FLAGS.logical_cpus:
            tf.config.set_logical_device_configuration(
                tf.config.list_physical_devices("CPU")[0],
                [tf.config.LogicalDeviceConfiguration()] * FLAGS.logical_cpus)
        config = config_lib.from_flags(FLAGS).replace(crop_size=size, load_size=size)
        print(json.dumps(benchmark.measure_training_step(config, FLAGS.steps, FLAGS.warmup)))
        return
    if FLAGS.preset:
        paths = [os.path.join(CONFIGS, f"{preset}.cfg") for preset in FLAGS.preset]
        for preset, path in zip(FLAGS.preset, paths):
            if not os.path.isfile(path):
                raise app.UsageError(f"--preset={preset}: there is no {path}")
        # A preset's flagfile goes first so that the flags given on this command line still
        # override it.
        variants = [(preset, [f"--flagfile={path}"], [])
                    for preset, path in zip(FLAGS.preset, paths)]
    else:
        # Refused before any worker starts; --selector's choices are the selector registry's.
        choices = list(FLAGS["selector"].parser.enum_values)
        unknown = [selector for selector in FLAGS.selectors if selector not in choices]
        if unknown:
            raise app.UsageError(f"--selectors: {', '.join(unknown)} not among the selectors "
                                 f"({', '.join(choices)})")
        variants = [(selector, [], [f"--selector={selector}"]) for selector in FLAGS.selectors]
    rows = _run_workers(
        [(name, [sys.executable, "-m", "launch.benchmark", *before, *sys.argv[1:], *after,
                 "--worker"]) for name, before, after in variants],
        benchmark.format_table)
    print(benchmark.format_table(rows))


def _run_workers(workers, format_table):
    """Runs each (name, command) of `workers`, a subprocess that prints its row as JSON last;
    returns the rows, each labelled with its name as "variant". When one fails, the rows
    measured before it are printed as `format_table(rows)` before the error, so that a long
    benchmark keeps what it measured."""
    rows = []
    for name, command in workers:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if result.returncode:
            if rows:
                print(format_table(rows))
            kept = "; the table above holds the rows measured before it" if rows else ""
            raise ChildProcessError(f"measuring {name} failed: its worker exited with status "
                                    f"{result.returncode} (its error is above){kept}")
        rows.append(dict(json.loads(result.stdout.strip().splitlines()[-1]), variant=name))
    return rows


def _bulk(height, width):
    """--bulk: prepares the images and model once, then one subprocess per row."""
    if FLAGS.worker:
        print(json.dumps(bulk_benchmark.measure(FLAGS.bulk_dir, FLAGS.bulk_row)))
        return
    config = config_lib.from_flags(FLAGS)
    if FLAGS.profile_layers:
        kinds, whole_seconds = bulk_benchmark.profile_layers(config, height, width)
        print(bulk_benchmark.format_layer_profile(kinds, whole_seconds, height, width,
                                                  machine.matmul_peak_gflop_per_s()))
        return
    with tempfile.TemporaryDirectory(prefix="bulk_benchmark_") as root:
        gflop = bulk_benchmark.prepare(root, config, height, width, FLAGS.images)
        peak = machine.matmul_peak_gflop_per_s()
        rows = _run_workers(
            [(row, [sys.executable, "-m", "launch.benchmark", *sys.argv[1:], "--worker",
                    f"--bulk_dir={root}", f"--bulk_row={row}"])
             for row in [bulk_benchmark.TRANSLATE, *FLAGS.workers]],
            lambda rows: bulk_benchmark.format_table(rows, gflop, height, width, peak))
        if FLAGS.reference_python:
            print("measuring the reference ...", file=sys.stderr, flush=True)
            rows.append(bulk_benchmark.measure_reference(root, FLAGS.reference_python, config))
    print(bulk_benchmark.format_table(rows, gflop, height, width, peak))


if __name__ == "__main__":
    cli.run(main)
