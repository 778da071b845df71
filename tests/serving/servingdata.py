"""Tiny runs and exports that the serving tests share."""
import collections
import os

import keras

from tests.testdata import tiny_config, write_tiny_run
from tfattncut.serving.export import export

TinyExport = collections.namedtuple("TinyExport", "export_dir path generator run_dir")


def save_tiny_run(root, name="run", seed=0):
    """A run directory of an untrained tiny generator; returns (config, generator).
    Different seeds give different weights."""
    config = tiny_config(root, name=name, seed=seed)
    keras.utils.set_random_seed(seed)
    return config, write_tiny_run(config)


def export_tiny_model(root, model_name="tiny", seed=0):
    """Exports a tiny run as ROOT/saved_models/MODEL_NAME/next version."""
    config, generator = save_tiny_run(root, name=f"run{seed}", seed=seed)
    export_dir = os.path.join(root, "saved_models")
    return TinyExport(export_dir, export(config.run_dir, model_name, export_dir), generator,
                      config.run_dir)
