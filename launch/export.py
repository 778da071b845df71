"""Exports a trained translator for TensorFlow Serving:
`python -m launch.export --checkpoint=runs/NAME --name=NAME [--version=N] [--direction=AtoB]`.

Writes EXPORT_DIR/NAME/VERSION/ (signatures serving_default, translate_float,
translate_encoded; see tfattncut.serving.export) and updates EXPORT_DIR/models.config and
EXPORT_DIR/batching.config for `tensorflow_model_server`. Folders that an export killed
mid-save left behind (`.staging-VERSION-PID`) are removed first.
"""
import os

from absl import flags

from tfattncut import cli, output_folders
from tfattncut.options import DIRECTIONS
from tfattncut.serving import image_header
from tfattncut.serving.export import BATCHING_CONFIG, MODELS_CONFIG, SIGNATURES, export

flags.DEFINE_string("checkpoint", None, "Run directory, its checkpoints/ folder, or a prefix.")
flags.DEFINE_string("name", None, "Model name: the folder under --export_dir.")
flags.DEFINE_integer("version", None, "Version number (default: the next free integer).",
                     lower_bound=1)
flags.DEFINE_enum("direction", "AtoB", DIRECTIONS, "Which generator to export.")
flags.DEFINE_string("export_dir", "saved_models", "Export root (TF Serving's model root).")
flags.DEFINE_integer("max_image_pixels", image_header.DEFAULT_MAX_IMAGE_PIXELS,
                     "translate_encoded refuses images whose header declares more pixels "
                     "(checked before decoding; guards tensorflow_model_server too).",
                     lower_bound=1, upper_bound=image_header.MAX_PIXELS_LIMIT)
flags.mark_flags_as_required(["checkpoint", "name"])
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    output_folders.check_output_folder("--export_dir", FLAGS.export_dir)
    path = export(FLAGS.checkpoint, FLAGS.name, FLAGS.export_dir, FLAGS.version,
                  FLAGS.direction, FLAGS.max_image_pixels)
    print(f"Exported {path} with signatures {', '.join(SIGNATURES)}")
    print(f"TF Serving configs: {os.path.join(FLAGS.export_dir, MODELS_CONFIG)}, "
          f"{os.path.join(FLAGS.export_dir, BATCHING_CONFIG)}")
    print(f"Serve it: python -m launch.serve --model_base_path="
          f"{os.path.dirname(path)} --model_name={FLAGS.name} --port=8500")


if __name__ == "__main__":
    cli.run(main)
