"""Which tf.distribute strategy runs the step, and whether XLA compiles it."""
import tensorflow as tf


def make_strategy(name):
    """`default` (no distribution), `one_device` (the first GPU, else the CPU) or `mirrored`
    (every GPU; on a machine without GPUs, every logical CPU device)."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    raise ValueError(f"--strategy must be default, one_device or mirrored; got {name!r}")


def resolve_jit_compile(setting, strategy):
    """(compile?, why) for --jit_compile=auto|true|false under `strategy`.

    The per-replica step applies the optimisers, whose cross-replica update cannot live in an
    XLA cluster (TF 2.21: "Trying to access resource …/replica_1 … from device CPU:0"), so XLA
    is refused with 2+ replicas. `auto` compiles only on one GPU/TPU replica: on CPU, XLA
    measured slower than graph mode for this generator (training.md).
    """
    replicas = strategy.num_replicas_in_sync
    if setting == "false":
        return False, "--jit_compile=false"
    if replicas > 1:
        if setting == "true":
            raise ValueError(
                f"--jit_compile=true is refused with {replicas} replicas: the optimiser update "
                "inside the per-replica step needs a cross-replica merge that XLA cannot "
                "compile. Use --jit_compile=auto (graph mode) or a single-replica strategy.")
        return False, f"auto: {replicas} replicas (the cross-replica update is not XLA-compilable)"
    if setting == "true":
        return True, "--jit_compile=true"
    accelerators = tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU")
    if accelerators:
        return True, f"auto: one replica on {accelerators[0].device_type}"
    return False, "auto: CPU only, where XLA measured slower than graph mode"
