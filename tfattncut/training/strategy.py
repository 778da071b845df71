"""Which tf.distribute strategy runs the step, whether XLA compiles it, and the step
run under it."""
import json
import os

import tensorflow as tf

from tfattncut.errors import InvalidValue
from tfattncut.options import STRATEGIES


_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}')


def make_strategy(name):
    """`default` (no distribution), `one_device` (the first GPU, else the CPU), `mirrored`
    (every GPU; on a machine without GPUs, every logical CPU device), `multi_worker` (every
    local GPU or the CPU of each worker named in TF_CONFIG) or `tpu`.

    `multi_worker` must be made before any other TensorFlow op runs in the process: it
    configures the runtime's collective ops, which can only happen at start-up.
    """
    if name == "multi_worker":
        _check_tf_config()
        # No communication_options: the default (AUTO) all-reduces over gRPC rings on CPU,
        # which the 2-worker CPU test runs with, and uses NCCL where there are GPUs.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _make_tpu_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def _check_tf_config():
    """Raises ValueError naming TF_CONFIG unless it describes this worker's place in a
    cluster; MultiWorkerMirroredStrategy would otherwise fall back to a silent local run or
    fail deep inside the runtime."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable on "
                         f"every worker, e.g. TF_CONFIG='{_TF_CONFIG_EXAMPLE}'")
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        hosts = cluster[task["type"]]
        index = int(task["index"])
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(
            f"TF_CONFIG is malformed ({type(error).__name__}: {error}); expected JSON with a "
            f"cluster and this process's task in it, e.g. {_TF_CONFIG_EXAMPLE}; got {raw!r}"
        ) from None
    if not 0 <= index < len(hosts):
        raise ValueError(f"TF_CONFIG task index {index} is outside the {len(hosts)} "
                         f"{task['type']!r} hosts of its cluster; got {raw!r}")


def _make_tpu_strategy():
    """TPUStrategy on the TPU named by TPU_NAME, else on a TPU VM's own chips."""
    tpu = os.environ.get("TPU_NAME", "local")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(f"--strategy=tpu found no TPU (TPU_NAME={tpu!r}): "
                         f"{str(error).splitlines()[0]}") from None
    return tf.distribute.TPUStrategy(resolver)


def replica_share(config, strategy):
    """The examples each replica of `strategy` takes of --batch_size (the global batch); an
    error naming both flags unless it splits evenly."""
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise InvalidValue(f"--batch_size={config.batch_size} must be a multiple of the "
                           f"{replicas} replicas of --strategy={config.strategy}")
    return config.batch_size // replicas


def resolve_jit_compile(setting, strategy):
    """(compile?, why) for --jit_compile=auto|true|false under `strategy`.

    XLA compiles each replica's forward pass, losses and gradients, never the updates
    (Method.replica_step), so it works with any number of replicas. `auto` compiles on a
    GPU or TPU and not on CPU, where XLA measured slower than graph mode for this generator
    (docs/design/training.md#xla).
    """
    if setting in ("true", "false"):
        return setting == "true", f"--jit_compile={setting}"
    replicas = strategy.num_replicas_in_sync
    accelerators = tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU")
    if accelerators:
        return True, f"auto: {replicas} replica(s) on {accelerators[0].device_type}"
    return False, "auto: CPU only, where XLA measured slower than graph mode"


def run_step(strategy, method, batch, seed, jit_compile):
    """`method.replica_step` on every replica of `strategy`, inside a tf.function.

    batch: the distributed batch; seed int32 [2]. Returns (losses averaged over replicas,
    the first local replica's images).
    """
    losses, images = strategy.run(method.replica_step, args=(batch, seed),
                                  kwargs={"jit_compile": jit_compile})
    losses = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
              for k, v in losses.items()}
    images = {k: strategy.experimental_local_results(v)[0] for k, v in images.items()}
    return losses, images
