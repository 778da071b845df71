"""Measures training-step time, FLOPs and peak memory, one configuration per process.

Peak memory is a per-process high-water mark (GPU: TF's allocator peak; CPU: the process's
maximum resident set), so comparing configurations needs one fresh process each: the
launcher runs `measure_training_step` in a subprocess per row.

FLOPs (`count_flops`) are those of the traced training-step graph, counted from static
shapes: 2 per multiply-add of every convolution (Conv2D, DepthwiseConv2dNative and their
BackpropInput / BackpropFilter gradients, which also carry transposed convolutions) and matrix
product (MatMul, BatchMatMul, BatchMatMulV2, BatchMatMulV3), forward and backward alike.
Elementwise ops, normalisation, reductions, padding and the optimiser updates are not counted
(they are memory bound and a few per cent of the arithmetic), so "achieved GFLOP/s" is the
convention of model-FLOP utilisation, not a hardware counter. Only ops the step's outputs and
side effects depend on count (as at run time, where unused gradients are pruned); calls into
nested functions are followed, a loop body counts once per iteration (its trip count must be
static) and a conditional counts its costlier branch.
"""
import collections
import math
import resource
import statistics
import time

import tensorflow as tf

from tfattncut import randomness
from tfattncut.data.unaligned import is_label_stream
from tfattncut.methods import build_method
from tfattncut.models.segmenter import NUM_CLASSES
from tfattncut.training.strategy import (make_strategy, replica_share, resolve_jit_compile,
                                         run_step)

_CONVOLUTIONS = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative",
                 "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"}
# Matrix product op type -> the attribute that says its left operand is transposed.
_MATRIX_PRODUCTS = {"MatMul": "transpose_a", "BatchMatMul": "adj_x", "BatchMatMulV2": "adj_x",
                    "BatchMatMulV3": "adj_x"}


def _static_shape(tensor, op):
    if not tensor.shape.is_fully_defined():
        raise ValueError(f"cannot count the FLOPs of {op.type} op {op.name!r}: the shape of "
                         f"{tensor.name} is {tensor.shape}, not static")
    return tensor.shape.as_list()


def _convolution_operands(op):
    """(the forward convolution's output or its gradient [B, H, W, C], the filter
    [kh, kw, C_in per group, C_out or depth multiplier]) of a convolution op."""
    if op.type.endswith("BackpropInput"):
        return op.inputs[2], op.inputs[1]
    if op.type.endswith("BackpropFilter"):
        return op.inputs[2], op.outputs[0]
    return op.outputs[0], op.inputs[1]


def _multiply_adds(op):
    """Multiply-adds of one convolution or matrix product; 0 for any other op. A convolution
    and both its gradients each take one multiply-add per (output element, filter tap)."""
    if op.type in _CONVOLUTIONS:
        result, kernel = _convolution_operands(op)
        kernel = _static_shape(kernel, op)
        # A depthwise output element reads one input channel.
        depth = 1 if op.type.startswith("Depthwise") else kernel[2]
        return math.prod(_static_shape(result, op)) * kernel[0] * kernel[1] * depth
    if op.type in _MATRIX_PRODUCTS:
        left = _static_shape(op.inputs[0], op)
        inner = left[-2] if op.get_attr(_MATRIX_PRODUCTS[op.type]) else left[-1]
        return math.prod(_static_shape(op.outputs[0], op)) * inner
    return 0


def _function_graph(graph, name):
    """The FuncGraph of a function called by an op of `graph` (looked up outwards)."""
    while graph is not None:
        function = graph._get_function(name)  # pylint: disable=protected-access
        if function is not None:
            return function.graph
        graph = getattr(graph, "outer_graph", None)
    raise ValueError(f"function {name} is not in the graph's function library")


def _live_ops(graph):
    """Ops that the graph's outputs and control outputs (stateful updates) depend on."""
    pending = [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    live = set()
    while pending:
        op = pending.pop()
        if op not in live:
            live.add(op)
            pending += [t.op for t in op.inputs] + list(op.control_inputs)
    return [op for op in graph.get_operations() if op in live]


def count_flops(graph):
    """FLOPs of one run of a tf.function's graph, per op type (see the module docstring for
    what counts): `count_flops(step.get_concrete_function(*args).graph)`."""
    counts = collections.Counter()
    for op in _live_ops(graph):
        counts[op.type] += 2 * _multiply_adds(op)
        called = {key: [count_flops(_function_graph(graph, f.name))
                        for f in ([value.func] if value.HasField("func") else value.list.func)]
                  for key, value in op.node_def.attr.items()
                  if value.HasField("func") or value.list.func}
        if op.type in ("While", "StatelessWhile"):
            # while_v2's inputs are (loop counter, maximum_iterations, loop variables...).
            body, trips = called["body"][0], tf.get_static_value(op.inputs[1])
            if sum(body.values()) and (trips is None or trips < 0):
                raise ValueError(f"cannot count the FLOPs of loop {op.name!r}: its trip count "
                                 "is not static")
            counts.update({k: v * int(trips) for k, v in body.items()})
        elif op.type in ("If", "StatelessIf", "Case", "StatelessCase"):
            branches = [c for counted in called.values() for c in counted]
            counts.update(max(branches, key=lambda c: sum(c.values())))
        else:
            for counted in called.values():
                for c in counted:
                    counts.update(c)
    return collections.Counter({k: v for k, v in counts.items() if v})


def peak_memory_mb():
    """Peak GPU allocator memory if a GPU is used, else the process's peak RSS, in MiB."""
    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_inputs(streams, batch_size, size):
    """A random batch of `streams` (data.unaligned.STREAMS): images [B, size, size, 3] in
    [-1, 1], label maps [B, size, size] of train ids."""
    shape = [batch_size, size, size]
    return {stream: tf.random.uniform(shape, 0, NUM_CLASSES, tf.int32, seed=i)
            if is_label_stream(stream) else tf.random.uniform(shape + [3], -1, 1, seed=i)
            for i, stream in enumerate(streams)}


def measure_training_step(config, steps=5, warmup=2):
    """Mean wall time and FLOPs of `steps` training steps after `warmup` untimed steps, on
    `random_inputs` of the method's streams (the data pipeline is not part of the step; a
    frozen network a method prepares from the data, such as semantic consistency's S_A,
    keeps its initial weights, which cost the same), run as
    training runs them: under --strategy, each replica with its share of --batch_size, with
    --jit_compile resolved as training resolves it (tfattncut.training.strategy).

    compile_s is the one-time cost: tracing, plus the first step's time beyond a mean step
    (XLA's compilation, graph optimisation). FLOPs are those of every replica together.
    """
    strategy = make_strategy(config.strategy)
    share = replica_share(config, strategy)
    with strategy.scope():
        method = build_method(config)
    jit, _ = resolve_jit_compile(config.jit_compile, strategy)
    step = tf.function(lambda batch, seed: run_step(strategy, method, batch, seed, jit)[0])
    inputs = random_inputs(method.input_streams(config), config.batch_size, config.crop_size)

    def replica_inputs(context):
        start = context.replica_id_in_sync_group * share
        return {k: v[start:start + share] for k, v in inputs.items()}

    batch = strategy.experimental_distribute_values_from_function(replica_inputs)
    start = time.perf_counter()
    graph = step.get_concrete_function(batch, randomness.step_seed(config.seed, 0)).graph
    trace_s = time.perf_counter() - start
    flops = sum(count_flops(graph).values())
    times = []
    for i in range(1 + warmup + steps):
        start = time.perf_counter()
        losses = step(batch, randomness.step_seed(config.seed, i))
        float(losses["G"])  # waits for the step to finish
        times.append(time.perf_counter() - start)
    timed = times[1 + warmup:]
    mean = statistics.mean(timed)
    return {
        "selector": config.selector, "model": config.model, "size": config.crop_size,
        "batch": config.batch_size, "strategy": config.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "jit": jit, "steps": steps, "compile_s": trace_s + times[0] - mean, "step_s": mean,
        "step_s_std": statistics.stdev(timed) if len(timed) > 1 else 0.0,
        "images_per_s": config.batch_size / mean, "gflop_per_step": flops / 1e9,
        "gflop_per_s": flops / 1e9 / mean, "peak_memory_mb": peak_memory_mb(),
    }


def format_table(rows):
    """Markdown table of measure_training_step rows, each labelled by its "variant" (the
    preset or selector it measured), with the step-time ratio to the first row."""
    base = rows[0]
    lines = ["| variant | model | selector | size | batch | replicas | XLA | compile (s) | "
             "step (s) | ± | images/s | GFLOP/step | GFLOP/s | peak MiB | "
             f"vs {base['variant']} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['model']} | {r['selector']} | {r['size']} | "
                     f"{r['batch']} | {r['replicas']} | {'yes' if r['jit'] else 'no'} | "
                     f"{r['compile_s']:.1f} | {r['step_s']:.3f} | {r['step_s_std']:.3f} | "
                     f"{r['images_per_s']:.2f} | {r['gflop_per_step']:.3f} | "
                     f"{r['gflop_per_s']:.2f} | {r['peak_memory_mb']:.0f} | "
                     f"{r['step_s'] / base['step_s']:.3f} |")
    return "\n".join(lines)
