"""One process of tests/training/test_multi_worker.py: trains as launch.train does, then saves
this process's final weights to the .npz file named by $WEIGHTS_OUT, which only a worker of
the run itself can report (non-chief workers write nothing into the run directory)."""
import os

import numpy as np
from absl import app, flags

from tfattncut import config as config_lib
from tfattncut.training.strategy import make_strategy
from tfattncut.training.trainer import Trainer


def final_weights(trainer):
    """{network/index: array} of every trainable weight of `trainer`'s networks."""
    return {f"{name}/{i}": variable.numpy()
            for name, network in trainer.method.networks.items()
            for i, variable in enumerate(network.trainable_variables)}


def main(argv):
    del argv
    config = config_lib.from_flags(flags.FLAGS)
    # Before any other TensorFlow op, as in launch.train.
    trainer = Trainer(config, make_strategy(config.strategy))
    trainer.fit()
    np.savez(os.environ["WEIGHTS_OUT"], **final_weights(trainer))


if __name__ == "__main__":
    config_lib.define_flags()  # here, not at import: the test imports final_weights
    app.run(main)
