"""TensorFlow settings that hold for the whole process, made once before the work starts:
TF32 matmuls (training's --tf32) and op determinism with fixed thread pools (the study's
scorers). Kept together because each changes every later computation of the process, not
only the caller's."""
import tensorflow as tf


def allow_tf32(enabled):
    """Whether float32 matmuls and convolutions may run in TF32 on Ampere or newer GPUs.

    TensorFlow computes them in TF32 unless told otherwise; that moves QS-Attn's X·Xᵀ logits
    enough to flip near-tied rankings, and the reference ran without it, so training makes it
    opt-in (--tf32)."""
    tf.config.experimental.enable_tensor_float_32_execution(enabled)


def make_deterministic(threads):
    """Op determinism and `threads` intra- and inter-op threads for this process: the same
    computation then gives the same bits on this machine. Must run before TensorFlow starts
    its runtime (the thread pools are made once)."""
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
