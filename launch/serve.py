"""Serves exported models over gRPC (and REST), like tensorflow_model_server:
`python -m launch.serve --model_base_path=saved_models/NAME [--model_name=NAME] --port=8500`
or `--model_config_file=saved_models/models.config`; `--rest_api_port`, `--enable_batching
[--batching_parameters_file]`, `--file_system_poll_wait_seconds`, `--ssl_config_file`,
`--rest_api_num_threads` and `--rest_api_timeout_in_ms` mean what they mean there. It binds
127.0.0.1 unless `--host=0.0.0.0` (in a container, behind a published port). Requests in
flight share `--max_inflight_memory_mb` (default: half the machine's memory). SIGTERM or
Ctrl-C stops it after the running requests finish, within `--grace_seconds`.
"""
import os
import signal
import sys
import threading

# Before TensorFlow starts: tensors from malloc, not from oneDNN's pool, which keeps the
# largest request's memory for good (tfattncut.serving.memory).
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")

from absl import flags, logging  # noqa: E402 (after the environment TensorFlow reads)

from tfattncut import cli  # noqa: E402
from tfattncut.serving import config_files, image_header, rest  # noqa: E402
from tfattncut.serving import server as server_lib  # noqa: E402
from tfattncut.serving.export import BatchingOptions  # noqa: E402
from tfattncut.serving.validation import (DEFAULT_MAX_MESSAGE_BYTES,  # noqa: E402
                                          SERVER_MAX_IMAGE_PIXELS)

# gRPC takes message limits as a C int: 2047 MiB is the most that fits.
MAX_MESSAGE_MB = (2**31 - 1) >> 20

# Ports are 16-bit: gRPC would bind a larger number modulo 65536 without a word.
flags.DEFINE_integer("port", 8500, "gRPC port (0: any free port, printed at start).",
                     lower_bound=0, upper_bound=65535)
flags.DEFINE_string("host", server_lib.DEFAULT_HOST, "Address to bind. The default serves "
                    "this machine only; --host=0.0.0.0 serves every interface (in a "
                    "container, or behind TLS and a firewall).")
flags.DEFINE_integer("rest_api_port", 0, "REST API port (0: no REST API).", lower_bound=0,
                     upper_bound=65535)
flags.DEFINE_string("model_name", "default", "Model name for --model_base_path.")
flags.DEFINE_string("model_base_path", None, "Folder of integer version folders.")
flags.DEFINE_string("model_config_file", None, "A model_config_list text proto (instead of "
                    "--model_name/--model_base_path).")
flags.DEFINE_bool("enable_batching", False, "Batch concurrent requests of the same shape.")
flags.DEFINE_string("batching_parameters_file", None, "BatchingParameters text proto "
                    "(default: max_batch_size 16, batch_timeout_micros 2000).")
flags.DEFINE_float("file_system_poll_wait_seconds", 1.0, "Seconds between looks for new "
                   "versions (0: look once at start, < 0: never).")
flags.DEFINE_string("ssl_config_file", None, "SSLConfig text proto (server_key, server_cert, "
                    "custom_ca: PEM text; client_verify: mutual TLS) for TLS on the gRPC port.")
flags.DEFINE_integer("max_message_mb", DEFAULT_MAX_MESSAGE_BYTES >> 20,
                     "Largest request or response message, in MiB; a request's decoded "
                     "tensors count against it too.", lower_bound=1,
                     upper_bound=MAX_MESSAGE_MB)
flags.DEFINE_integer("max_image_pixels", SERVER_MAX_IMAGE_PIXELS,
                     "Largest image (height x width) a request may hold: of a pixel tensor "
                     "[B, H, W, C], or an encoded image (read from its header before "
                     "decoding). An exported translate_encoded signature keeps its own limit "
                     "(launch.export --max_image_pixels).", lower_bound=1,
                     upper_bound=image_header.MAX_PIXELS_LIMIT)
flags.DEFINE_integer("max_inflight_memory_mb", None, "Memory that the requests in flight may "
                     "hold together, in MiB, estimated per request from its pixels before it "
                     "runs; a request waits for room within its deadline. Default: half of "
                     "the machine's (or container's) memory.", lower_bound=1)
flags.DEFINE_integer("rest_api_num_threads", rest.DEFAULT_NUM_THREADS, "REST requests "
                     "answered at once (connections are read by one event loop, so slow "
                     "clients hold no thread).", lower_bound=1)
flags.DEFINE_integer("rest_api_timeout_in_ms", int(rest.DEFAULT_TIMEOUT_SECONDS * 1000),
                     "How long a REST request may take to arrive (request line, headers and "
                     "body together; an idle keep-alive connection is closed then), and wait "
                     "for room in the memory budget.", lower_bound=1)
flags.DEFINE_integer("rest_api_max_connections_per_client",
                     rest.DEFAULT_MAX_CONNECTIONS_PER_CLIENT, "REST connections one client "
                     "address may hold open; more are answered 503.", lower_bound=1)
flags.DEFINE_integer("grpc_max_concurrent_rpcs", server_lib.DEFAULT_MAX_CONCURRENT_RPCS,
                     "gRPC calls running or waiting for a worker at once; more are answered "
                     "RESOURCE_EXHAUSTED.", lower_bound=1)
flags.DEFINE_float("grace_seconds", 10.0, "How long running requests may take to finish "
                   "at shutdown.", lower_bound=0)
FLAGS = flags.FLAGS


def models_from_flags():
    if bool(FLAGS.model_base_path) == bool(FLAGS.model_config_file):
        raise ValueError("give exactly one of --model_base_path or --model_config_file")
    if FLAGS.model_config_file:
        return config_files.read_model_config_file(FLAGS.model_config_file)
    if not os.path.isdir(FLAGS.model_base_path):
        raise ValueError(f"--model_base_path={FLAGS.model_base_path} is not a folder")
    return {FLAGS.model_name: FLAGS.model_base_path}


def main(_argv):  # cli.run refuses positional arguments
    batching = None
    if FLAGS.enable_batching:
        batching = (config_files.read_batching_parameters(FLAGS.batching_parameters_file)
                    if FLAGS.batching_parameters_file else BatchingOptions())
    credentials = (config_files.read_ssl_config_file(FLAGS.ssl_config_file)
                   if FLAGS.ssl_config_file else None)
    models = models_from_flags()
    server = server_lib.ModelServer(
        models, port=FLAGS.port, host=FLAGS.host,
        rest_api_port=FLAGS.rest_api_port or None, batching=batching,
        poll_wait_seconds=FLAGS.file_system_poll_wait_seconds,
        max_message_bytes=FLAGS.max_message_mb << 20, max_image_pixels=FLAGS.max_image_pixels,
        credentials=credentials, rest_api_num_threads=FLAGS.rest_api_num_threads,
        rest_api_timeout_seconds=FLAGS.rest_api_timeout_in_ms / 1000,
        rest_api_max_connections_per_client=FLAGS.rest_api_max_connections_per_client,
        max_inflight_memory_bytes=(FLAGS.max_inflight_memory_mb << 20
                                   if FLAGS.max_inflight_memory_mb else None),
        max_concurrent_rpcs=FLAGS.grpc_max_concurrent_rpcs)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    for name, source in server.sources.items():
        print(f"Model {name}: {source.base_path}, versions {source.available_versions()}")
    print(f"In-flight memory budget: {server.budget.total_bytes >> 20} MiB")
    grpc_kind = "gRPC (TLS)" if credentials else "gRPC"
    print(f"Serving {grpc_kind} on {FLAGS.host}:{server.port}"
          + (f", REST on {FLAGS.host}:{server.rest_api_port}" if server.rest_api_port else ""),
          flush=True)
    stop.wait()
    print("Stopping: finishing running requests", flush=True)
    server.stop(FLAGS.grace_seconds)
    print("Stopped", flush=True)
    # A thread still inside a model call (a TensorFlow op cannot be interrupted) or stuck
    # anywhere else must not hold the exit past the grace period.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    cli.run(main)
