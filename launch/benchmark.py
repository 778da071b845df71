"""Benchmarks, each printed as a Markdown table.

Training steps: `python -m launch.benchmark --flagfile=configs/cut.cfg
--selectors=random,qs_global,qs_local,qs_local_global --size=256 --steps=N` measures the mean
training-step time and peak memory of each selector on this machine, in one run (one
subprocess per selector, so each peak is its own), with the ratio to `random`. Any config flag
(--batch_size, --jit_compile, --ngf, ...) applies to every row.

Serving: `python -m launch.benchmark --serving --size=256 [--flagfile=...]` measures p50/p99
latency and throughput of the exported generator called in-process and through the embedded
gRPC server at concurrency 1, 4 and 16, with and without batching.
"""
import json
import subprocess
import sys

from absl import app, flags

from tfattncut import config as config_lib
from tfattncut.serving import benchmark as serving_benchmark
from tfattncut.training import benchmark

config_lib.define_flags()
flags.DEFINE_list("selectors", ["random", "qs_global", "qs_local", "qs_local_global"],
                  "Selectors to compare (one row each).")
flags.DEFINE_list("presets", [],
                  "Compare these presets (configs/NAME.cfg) instead of selectors: one row each, "
                  "e.g. cut,cyclegan,dclgan,simdcl,uag.")
flags.DEFINE_integer("size", 256, "Square image size (sets --crop_size).")
flags.DEFINE_integer("steps", 5, "Timed steps per row, after the warm-up steps.")
flags.DEFINE_integer("warmup", 2, "Untimed steps first (tracing, compilation).")
flags.DEFINE_bool("serving", False, "Benchmark serving instead of training steps.")
flags.DEFINE_integer("requests", 64, "--serving: requests per path and concurrency.")
flags.DEFINE_bool("worker", False, "Internal: measure one row and print it as JSON.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
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
    if FLAGS.presets:
        # One subprocess per row (its own peak memory); a preset's flagfile goes first so
        # that the flags given on this command line still override it.
        variants = [([f"--flagfile=configs/{preset}.cfg"], []) for preset in FLAGS.presets]
    else:
        variants = [([], [f"--selector={selector}"]) for selector in FLAGS.selectors]
    rows = []
    for before, after in variants:
        print(f"measuring {' '.join(before + after)} ...", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "launch.benchmark", *before, *sys.argv[1:], *after,
                   "--worker"]
        result = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(benchmark.format_table(rows, baseline="cut" if FLAGS.presets else "random",
                                 key="model" if FLAGS.presets else "selector"))


if __name__ == "__main__":
    app.run(main)
