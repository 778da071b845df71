"""Imports a generator trained with the public PyTorch CUT / FastCUT / QS-Attn code:
`python -m launch.import_torch --netG=latest_net_G.pth --preset=cut --out=runs/NAME`.

OUT becomes a run directory (config.json + checkpoints/) that launch.translate and
launch.export accept. torch is not needed. The preset gives the method's settings (one whose
translator is the ResNet generator alone, which is what the state dict fills); the state dict
decides netG, ngf and no_antialias.
"""
from absl import flags

from tfattncut import cli, output_folders
from tfattncut.torch_import import import_generator

flags.DEFINE_string("netG", None, "The generator's state dict (.pth), e.g. latest_net_G.pth.")
flags.DEFINE_string("preset", "cut", "Preset name in configs/ or a .cfg path.")
flags.DEFINE_string("out", None, "New (or empty) run directory to write.")
flags.mark_flags_as_required(["netG", "out"])
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    output_folders.check_output_folder("--out", FLAGS.out)
    out = import_generator(FLAGS.netG, FLAGS.preset, FLAGS.out)
    print(f"Imported {FLAGS.netG} into {out}; export it with "
          f"python -m launch.export --checkpoint={out} --name=NAME")


if __name__ == "__main__":
    cli.run(main)
