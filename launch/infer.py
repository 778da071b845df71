"""Translation modules, served: image files through a model server (gRPC), not locally.

Translates images through a model server (the embedded one or tensorflow_model_server):
`python -m launch.infer --server=HOST:PORT --model_name=NAME --input=DIR_OR_FILE --output=DIR
[--concurrency=N]`. Writes OUTPUT/STEM.png per image; never overwrites an input, nor (unless
--overwrite) files already in OUTPUT. An image
the server refuses (undecodable, too large) is listed at the end with the server's reason,
after the others are written; an error about the server or model stops at once.
"""
import grpc
from absl import flags

from tfattncut import cli
from tfattncut.errors import UserError
from tfattncut.serving.client import infer_files

flags.DEFINE_string("server", "localhost:8500", "gRPC address of the model server.")
flags.DEFINE_string("model_name", None, "Served model name.")
flags.DEFINE_integer("model_version", None, "Version to ask for (default: the served one).",
                     lower_bound=0)
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("output", None, "Folder for the translations (PNG, same stems).")
flags.DEFINE_integer("concurrency", 4, "Requests in flight.", lower_bound=1)
flags.DEFINE_float("timeout_seconds", 120.0, "Deadline of one request (> 0).")
# A deadline of 0 or less would expire before sending and read as the server's DEADLINE_EXCEEDED.
flags.register_validator("timeout_seconds", lambda seconds: seconds > 0,
                         "--timeout_seconds must be > 0")
flags.DEFINE_integer("retries", 5, "Retries of a request the server answers UNAVAILABLE.",
                     lower_bound=0)
flags.DEFINE_bool("overwrite", False, "Replace translations already in --output from an "
                  "earlier run; without it such files are refused.")
flags.mark_flags_as_required(["model_name", "input", "output"])
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    try:
        written = infer_files(FLAGS.server, FLAGS.model_name, FLAGS.input, FLAGS.output,
                              FLAGS.concurrency, FLAGS.overwrite, version=FLAGS.model_version,
                              timeout_seconds=FLAGS.timeout_seconds, retries=FLAGS.retries)
    except grpc.RpcError as error:
        # UNAVAILABLE: nothing answered (gRPC's details say why, e.g. connection refused).
        raise UserError(f"--server={FLAGS.server}: {error.code().name}: "
                        f"{error.details()}") from None
    print(f"Wrote {len(written)} translation(s) to {FLAGS.output}")


if __name__ == "__main__":
    cli.run(main)
