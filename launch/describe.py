"""Prints the networks of a configuration as JSON:
`python -m launch.describe --flagfile=configs/cut.cfg`.

Parameter counts of G, D and F (selectors with weights count in F) and the NCE feature
shapes [H, W, C] at the configured crop size. No data is read.
"""
import json

from absl import flags

from tfattncut import cli
from tfattncut import config as config_lib
from tfattncut.describe import describe

config_lib.define_flags()


def main(_argv):  # cli.run refuses positional arguments
    print(json.dumps(describe(config_lib.from_flags(flags.FLAGS)), indent=2))


if __name__ == "__main__":
    cli.run(main)
