"""The step-time benchmark's FLOP count, measurement and table."""
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.training import benchmark


def conv_matmul_step(images, kernel, weights):
    """A convolution (stride 2, VALID), a fixed depthwise blur, a batched product of the
    features with themselves and a dense layer, with the gradients of every input."""
    with tf.GradientTape() as tape:
        tape.watch([images, kernel, weights])
        features = tf.nn.conv2d(images, kernel, 2, "VALID")  # [2, 4, 4, 4]
        blur = tf.ones([3, 3, 4, 1]) / 9.0
        features = tf.nn.depthwise_conv2d(features, blur, [1, 1, 1, 1], "SAME")
        tokens = tf.reshape(features, [2, 16, 4])
        gram = tf.linalg.matmul(tokens, tokens, transpose_b=True)  # [2, 16, 16]
        logits = tf.linalg.matmul(tf.reshape(gram, [2, 256]), weights)  # [2, 3]
        loss = tf.reduce_sum(tf.square(logits))
    return tape.gradient(loss, [images, kernel, weights])


class CountFlopsTest(tf.test.TestCase):

    def test_forward_and_gradients_match_a_hand_count(self):
        step = tf.function(conv_matmul_step).get_concrete_function(
            tf.TensorSpec([2, 9, 9, 3]), tf.TensorSpec([3, 3, 3, 4]), tf.TensorSpec([256, 3]))
        conv = 2 * (2 * 4 * 4 * 4) * (3 * 3 * 3)  # 2 FLOPs x output elements x taps x C_in
        blur = 2 * (2 * 4 * 4 * 4) * (3 * 3)  # depthwise: one input channel per output
        gram = 2 * (2 * 16 * 16) * 4
        dense = 2 * (2 * 3) * 256
        self.assertEqual(benchmark.count_flops(step.graph), {
            "Conv2D": conv, "Conv2DBackpropInput": conv, "Conv2DBackpropFilter": conv,
            # The blur's filter is a constant: its filter gradient is never computed.
            "DepthwiseConv2dNative": blur, "DepthwiseConv2dNativeBackpropInput": blur,
            # Forward, and the gradient with respect to each operand.
            "BatchMatMulV2": 3 * gram, "MatMul": 3 * dense})

    def test_unused_gradients_are_not_counted(self):
        kernel = tf.Variable(tf.ones([1, 1, 2, 5]))

        def step(images):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.conv2d(images, kernel, 1, "SAME"))
            return loss, tape.gradient(loss, kernel)  # not the images' gradient

        graph = tf.function(step).get_concrete_function(tf.ones([1, 4, 4, 2])).graph
        self.assertIn("Conv2DBackpropInput", {op.type for op in graph.get_operations()})
        self.assertEqual(benchmark.count_flops(graph),
                         {"Conv2D": 2 * 80 * 2, "Conv2DBackpropFilter": 2 * 80 * 2})

    def test_a_loop_counts_its_body_per_iteration(self):
        def blocks(x, w):
            return tf.map_fn(lambda block: tf.linalg.matmul(block, w), x)

        graph = tf.function(blocks).get_concrete_function(
            tf.TensorSpec([3, 4, 5]), tf.TensorSpec([5, 2])).graph
        self.assertEqual(benchmark.count_flops(graph), {"MatMul": 3 * 2 * (4 * 2) * 5})

    def test_a_conditional_counts_its_costlier_branch(self):
        def maybe_square(flag, x):
            return tf.cond(flag, lambda: tf.linalg.matmul(x, x), lambda: x)

        graph = tf.function(maybe_square).get_concrete_function(
            tf.TensorSpec([], tf.bool), tf.TensorSpec([6, 6])).graph
        self.assertEqual(benchmark.count_flops(graph), {"MatMul": 2 * 36 * 6})

    def test_dynamic_shapes_are_an_error_naming_the_op(self):
        graph = tf.function(lambda x: tf.linalg.matmul(x, x)).get_concrete_function(
            tf.TensorSpec([None, None])).graph
        with self.assertRaisesRegex(ValueError, "MatMul op .*not static"):
            benchmark.count_flops(graph)


class BenchmarkTest(tf.test.TestCase):

    def test_measures_a_tiny_step(self):
        row = benchmark.measure_training_step(tiny_config("/unused"), steps=2, warmup=1)
        self.assertGreater(row["step_s"], 0.0)
        self.assertAllClose(row["images_per_s"], 1.0 / row["step_s"])
        self.assertGreater(row["peak_memory_mb"], 10.0)
        self.assertEqual((row["selector"], row["size"], row["jit"], row["replicas"]),
                         ("random", 64, False, 1))
        self.assertGreater(row["compile_s"], 0.0)  # tracing at least
        self.assertGreater(row["gflop_per_step"], 0.01)
        self.assertAllClose(row["gflop_per_s"], row["gflop_per_step"] / row["step_s"])

    def test_table_ratio_to_the_first_row(self):
        rows = [dict(variant=v, model="cut", selector=s, size=64, batch=2, replicas=2, jit=True,
                     compile_s=31.0, step_s=t, step_s_std=0.0, images_per_s=2 / t,
                     gflop_per_step=4.4, gflop_per_s=4.4 / t, peak_memory_mb=100.0)
                for v, s, t in (("cut", "random", 2.0), ("qsattn_global", "qs_global", 2.2))]
        lines = benchmark.format_table(rows).splitlines()
        self.assertIn("GFLOP/s", lines[0])
        self.assertTrue(lines[0].endswith("| vs cut |"))
        self.assertEqual(lines[-1], "| qsattn_global | cut | qs_global | 64 | 2 | 2 | yes | 31.0 | "
                                    "2.200 | 0.000 | 0.91 | 4.400 | 2.00 | 100 | 1.100 |")
