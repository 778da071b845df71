"""Renders the bundled synthetic sim-to-real street scenes (tfattncut.data.synthetic).

python -m launch.make_synthetic --out=data/synth_street --size=128 --num_train=1000 \\
    --num_test=100 --seed=0
"""
from absl import flags

from tfattncut import cli
from tfattncut.data import synthetic

_OUT = flags.DEFINE_string("out", synthetic.DEFAULT_ROOT, "Output folder (replaced if it holds "
                           "an earlier synthetic set; any other non-empty folder is refused).")
_SIZE = flags.DEFINE_integer("size", synthetic.SIZE, "Image height and width in pixels.",
                             lower_bound=synthetic.MIN_SIZE)
_NUM_TRAIN = flags.DEFINE_integer("num_train", synthetic.NUM_TRAIN, "Training images per domain.",
                                  lower_bound=1)
_NUM_TEST = flags.DEFINE_integer("num_test", synthetic.NUM_TEST, "Test images per domain.",
                                 lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random draw.", lower_bound=0)


def main(_argv):  # cli.run refuses positional arguments
    counts = synthetic.generate_dataset(_OUT.value, size=_SIZE.value, num_train=_NUM_TRAIN.value,
                                        num_test=_NUM_TEST.value, seed=_SEED.value,
                                        flag="--out")
    print(f"Wrote {sum(counts.values())} files to {_OUT.value}: "
          + ", ".join(f"{folder} {count}" for folder, count in counts.items()))


if __name__ == "__main__":
    cli.run(main)
