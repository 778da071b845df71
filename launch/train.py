"""Trains a method: `python -m launch.train --flagfile=configs/NAME.cfg [--flag=value ...]`."""
import os
import sys
import time

from absl import flags, logging

from tfattncut import cli, output_folders
from tfattncut import config as config_lib
from tfattncut.data import synthetic
from tfattncut.training.strategy import make_strategy
from tfattncut.training.trainer import EXIT_PREEMPTED, Preempted, Trainer

config_lib.define_flags()


def main(_argv):  # cli.run refuses positional arguments
    config = config_lib.from_flags(flags.FLAGS)
    output_folders.check_output_folder("--checkpoints_dir", config.checkpoints_dir)
    # Before any other TensorFlow op: --strategy=multi_worker sets up the runtime's collectives.
    strategy = make_strategy(config.strategy)
    if config.make_synthetic:
        synthetic.ensure_dataset(config.dataroot)
    start = time.time()
    trainer = Trainer(config, strategy)
    try:
        history = trainer.fit()
    except Preempted as stop:
        print(f"\n{stop}. Run the same command with --resume to continue.")
        sys.exit(EXIT_PREEMPTED)
    samples = trainer.write_samples()
    minutes = (time.time() - start) / 60
    final = ", ".join(f"{k} {v:.4f}" for k, v in history[-1].items()) if history else "none"
    print(f"\nTrained {config.name} to step {int(trainer.step)} in {minutes:.1f} min.")
    print(f"Final losses: {final}")
    print(f"TensorBoard logs: {os.path.join(config.run_dir, 'logs')} "
          f"(tensorboard --logdir {config.checkpoints_dir})")
    if samples is None:  # write_samples says why in the log
        samples = ("none: the chief worker writes them" if not trainer.is_chief else
                   f"none: no test images of the source domain under {config.dataroot}")
    print(f"Sample images:    {samples}")
    print(f"Checkpoint:       {trainer.latest_checkpoint}")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    cli.run(main)
