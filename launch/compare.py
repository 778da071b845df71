"""Compares runs: `python -m launch.compare --runs=runs/A,runs/B [--output=DIR]` gathers each
run's evaluation reports (RUN/eval/*.json) into one Markdown table and one metric-vs-epoch
plot (tfattncut.evaluation.compare)."""
from absl import flags

from tfattncut import cli
from tfattncut.evaluation import compare

flags.DEFINE_list("runs", None, "Run directories, comma-separated.")
flags.DEFINE_string("output", "runs/compare", "Folder for compare.md and compare.png.")
flags.mark_flag_as_required("runs")
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    table, plot = compare.compare(FLAGS.runs, FLAGS.output)
    print(table)
    print(f"\nTable: {FLAGS.output}/{compare.TABLE}")
    print(f"Plot:  {plot}" if plot else "No per-epoch reports: no plot.")


if __name__ == "__main__":
    cli.run(main)
