"""Prints the networks of a configuration as JSON:
`python -m launch.describe --flagfile=configs/cut.cfg`.

Parameter counts of G, D and F (selectors with weights count in F) and the NCE feature
shapes [H, W, C] at the configured crop size. No data is read.
"""
import json

from absl import app, flags

from tfattncut import config as config_lib
from tfattncut.methods import METHODS

config_lib.define_flags()


def describe(config):
    method = METHODS[config.model](config)
    counts = {name: net.count_params() for name, net in method.networks.items()}
    selectors = {s.name: s.count_params() for s in method.projector.selectors if s.weights}
    shapes = method.generator.feature_shapes(config.nce_layers, config.crop_size)
    return {
        "model": config.model,
        "selector": config.selector,
        "parameters": {**counts, "total": sum(counts.values()),
                       "selectors_in_projector": selectors},
        "nce_features": {str(layer): shape for layer, shape in zip(config.nce_layers, shapes)},
        "crop_size": config.crop_size,
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    print(json.dumps(describe(config_lib.from_flags(flags.FLAGS)), indent=2))


if __name__ == "__main__":
    app.run(main)
