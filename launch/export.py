"""Exports a trained translator for TensorFlow Serving:
`python -m launch.export --checkpoint=runs/NAME --name=NAME [--version=N] [--direction=AtoB]`.

Writes EXPORT_DIR/NAME/VERSION/ (signatures serving_default, translate_float,
translate_encoded; see tfattncut.serving.export) and updates EXPORT_DIR/models.config and
EXPORT_DIR/batching.config for `tensorflow_model_server`.
"""
import os

from absl import app, flags

from tfattncut.serving.export import BATCHING_CONFIG, MODELS_CONFIG, SIGNATURES, export

flags.DEFINE_string("checkpoint", None, "Run directory, its checkpoints/ folder, or a prefix.")
flags.DEFINE_string("name", None, "Model name: the folder under --export_dir.")
flags.DEFINE_integer("version", None, "Version number (default: the next free integer).",
                     lower_bound=1)
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "Which generator to export.")
flags.DEFINE_string("export_dir", "saved_models", "Export root (TF Serving's model root).")
flags.mark_flags_as_required(["checkpoint", "name"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    path = export(FLAGS.checkpoint, FLAGS.name, FLAGS.export_dir, FLAGS.version,
                  FLAGS.direction)
    print(f"Exported {path} with signatures {', '.join(SIGNATURES)}")
    print(f"TF Serving configs: {os.path.join(FLAGS.export_dir, MODELS_CONFIG)}, "
          f"{os.path.join(FLAGS.export_dir, BATCHING_CONFIG)}")
    print(f"Serve it: python -m launch.serve --model_base_path="
          f"{os.path.dirname(path)} --model_name={FLAGS.name} --port=8500")


if __name__ == "__main__":
    app.run(main)
