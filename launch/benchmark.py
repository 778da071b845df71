"""Benchmarks, each printed as a Markdown table.

Training steps (the default; `--train` says so explicitly):
`python -m launch.benchmark --train --preset=cut,qsattn_global --size=256 --steps=N` measures
the mean training-step time, images/s, achieved GFLOP/s and peak memory of each preset
(configs/NAME.cfg) on this machine, in one run (one subprocess per row, so each peak is its
own), with the ratio to the first row. Without --preset, `--selectors=random,qs_global,...`
compares selectors of one configuration (`--flagfile=configs/cut.cfg`). Any config flag
(--batch_size, --jit_compile, --ngf, ...) applies to every row and overrides the preset's.
GFLOP counts the convolutions and matrix products of the traced step, forward and backward
(tfattncut.training.benchmark says exactly what counts).

Serving: `python -m launch.benchmark --serving --size=256 [--flagfile=...]` measures p50/p99
latency and throughput of the exported generator called in-process and through the embedded
gRPC server at concurrency 1, 4 and 16, with and without batching.

Profiles: `python -m launch.benchmark --profile_top=RUN/logs` prints the ops with the most
self time in the profile a `launch.train --profile_steps=A,B` run wrote there.
"""
import json
import os
import subprocess
import sys

from absl import app, flags

from tfattncut import cli
from tfattncut import config as config_lib
from tfattncut.serving import benchmark as serving_benchmark
from tfattncut.training import benchmark, profiling

config_lib.define_flags()
flags.DEFINE_list("selectors", ["random", "qs_global", "qs_local", "qs_local_global"],
                  "Selectors to compare (one row each) when no --preset is given.")
flags.DEFINE_list("preset", [],
                  "Compare these presets (configs/NAME.cfg) instead of selectors: one row each, "
                  "e.g. cut,qsattn_global or cut,cyclegan,dclgan,simdcl,uag.")
flags.DEFINE_alias("presets", "preset")
flags.DEFINE_integer("size", 256, "Square image size (sets --crop_size).", lower_bound=1)
flags.DEFINE_integer("steps", 5, "Timed steps per row, after the warm-up steps.",
                     lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed steps first (tracing, compilation).",
                     lower_bound=0)
flags.DEFINE_bool("train", False, "Benchmark training steps (also the default without "
                  "--serving or --profile_top).")
flags.DEFINE_bool("serving", False, "Benchmark serving instead of training steps.")
flags.DEFINE_integer("requests", 64, "--serving: requests per path and concurrency.",
                     lower_bound=1)
flags.DEFINE_string("profile_top", "", "Print the top ops by self time of the TensorBoard "
                    "profile in this log folder (a run's logs/) instead of benchmarking.")
flags.DEFINE_integer("top", 20, "--profile_top: how many ops to list.", lower_bound=1)
flags.DEFINE_bool("worker", False, "Internal: measure one row and print it as JSON.")
FLAGS = flags.FLAGS
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    modes = [name for name in ("train", "serving", "profile_top") if FLAGS[name].value]
    if len(modes) > 1:
        raise app.UsageError(f"choose one of --train, --serving, --profile_top; got "
                             f"{', '.join('--' + m for m in modes)}")
    if FLAGS.profile_top:
        print(profiling.format_top_ops(profiling.top_ops(FLAGS.profile_top, FLAGS.top)))
        return
    if FLAGS.serving:
        rows = serving_benchmark.run_serving_benchmark(
            size=FLAGS.size, requests=FLAGS.requests, config=config_lib.from_flags(FLAGS))
        print(serving_benchmark.format_table(rows))
        return
    if FLAGS.worker:
        config = config_lib.from_flags(FLAGS).replace(crop_size=FLAGS.size,
                                                      load_size=FLAGS.size)
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
        variants = [(selector, [], [f"--selector={selector}"]) for selector in FLAGS.selectors]
    rows = []
    for name, before, after in variants:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "launch.benchmark", *before, *sys.argv[1:], *after,
                   "--worker"]
        result = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
        rows.append(dict(json.loads(result.stdout.strip().splitlines()[-1]), variant=name))
    print(benchmark.format_table(rows))


if __name__ == "__main__":
    cli.run(main)
