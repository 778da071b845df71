"""The four attention modules of attention-based CUT
(docs/design/selection.md#attention-modules-of-attention-based-cut): each against a float64
NumPy oracle recomputed from the layer's own weights, plus the contract they share as
selectors with weights inside F (parameter placement, one set of weights for both domains,
trainable by an optimizer on a loss of the Selection, XLA == eager)."""
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from scipy.special import expit, log_softmax, softmax, xlogy

from tfattncut.selection.bam import BAMSelector
from tfattncut.selection.external_attention import ExternalAttentionSelector
from tfattncut.selection.self_attention import SelfAttentionSelector
from tfattncut.selection.triplet_attention import TripletAttentionSelector

SEED = tf.constant([3, 7], tf.int32)
B, H, W, C, P = 2, 8, 8, 32, 16
N = H * W


def stable_top(significance, count):
    """The P largest per image, equal values in increasing index order."""
    return np.argsort(-significance, axis=-1, kind="stable")[:, :count]


def take(values, indices):
    """values [B, N, ...] at indices [B, P] -> [B, P, ...]."""
    return np.stack([v[i] for v, i in zip(values, indices)])


def conv2d(x, kernel, bias=0.0, dilation=1):
    """Zero 'same'-padded stride-1 conv: x [B, H, W, I], kernel [k, k, I, O] -> [B, H, W, O]."""
    size = kernel.shape[0]
    pad = dilation * (size - 1) // 2
    padded = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    rows, cols = x.shape[1:3]
    return bias + sum(
        padded[:, i * dilation:i * dilation + rows, j * dilation:j * dilation + cols] @ kernel[i, j]
        for i in range(size) for j in range(size))


def weights(layer):
    """{path below the layer's name: float64 value}."""
    prefix = layer.name + "/"
    return {w.path.removeprefix(prefix): w.numpy().astype(np.float64) for w in layer.weights}


def self_attention_oracle(layer, source, translated):
    w = weights(layer)
    query = source @ w["query/kernel"] + w["query/bias"]
    key = source @ w["key/kernel"]
    log_a = log_softmax(query @ key.transpose(0, 2, 1) / np.sqrt(C // 8), axis=-1)
    significance = np.sum(np.exp(log_a) * log_a, axis=-1)
    indices = stable_top(significance, P)
    rows = take(np.exp(log_a), indices)
    return rows @ source, rows @ translated, indices


def external_attention_oracle(layer, source, translated):
    w = weights(layer)
    attention = softmax(source @ w["memory_key/kernel"], axis=1)
    attention /= 1e-9 + attention.sum(axis=-1, keepdims=True)
    indices = stable_top(xlogy(attention, attention).sum(axis=-1), P)
    memory = take(attention, indices) @ w["memory_value/kernel"]
    return take(source, indices) + memory, take(translated, indices) + memory, indices


def gated(gate, residual, source, translated):
    """(r + M) ⊙ X and (r + M) ⊙ X~ at the top P of mean_c M; gate [B, H, W, C]."""
    gate = gate.reshape(B, N, C)
    indices = stable_top(gate.mean(axis=-1), P)
    scale = residual + take(gate, indices)
    return scale * take(source, indices), scale * take(translated, indices), indices


def bam_oracle(layer, source, translated):
    w = weights(layer)
    x = source.reshape(B, H, W, C)
    hidden = np.maximum(x.mean(axis=(1, 2)) @ w["channel_reduce/kernel"]
                        + w["channel_reduce/bias"], 0)
    channel = hidden @ w["channel_expand/kernel"] + w["channel_expand/bias"]
    spatial = np.maximum(conv2d(x, w["spatial_reduce/kernel"], w["spatial_reduce/bias"]), 0)
    for name in ("spatial_dilated_0", "spatial_dilated_1"):
        spatial = np.maximum(conv2d(spatial, w[f"{name}/kernel"], w[f"{name}/bias"], 4), 0)
    spatial = conv2d(spatial, w["spatial_out/kernel"], w["spatial_out/bias"])
    gate = expit(channel[:, None, None, :] + spatial)
    return gated(gate, 1.0, source, translated)


def triplet_oracle(layer, source, translated):
    w = weights(layer)
    x = source.reshape(B, H, W, C)

    def branch(name, pooled_max, pooled_mean):
        """Gate over a plane [B, R, S] from its Z-pool, per-sample normalised."""
        out = conv2d(np.stack([pooled_max, pooled_mean], -1), w[f"{name}/conv/kernel"])
        normalised = (out - out.mean(axis=(1, 2, 3), keepdims=True)) / np.sqrt(
            out.var(axis=(1, 2, 3), keepdims=True) + 1e-5)
        return expit(normalised * w[f"{name}/norm/gamma"] + w[f"{name}/norm/beta"])[..., 0]

    # C-W plane (rows C, cols W) pooled over H; H-C plane pooled over W; H-W pooled over C.
    cw = branch("gate_cw", x.max(1).transpose(0, 2, 1), x.mean(1).transpose(0, 2, 1))
    hc = branch("gate_hc", x.max(2), x.mean(2))
    hw = branch("gate_hw", x.max(3), x.mean(3))
    gate = (cw.transpose(0, 2, 1)[:, None, :, :] + hc[:, :, None, :] + hw[..., None]) / 3
    return gated(gate, 0.0, source, translated)


# name -> (class, constructor kwargs beyond (P, C), NumPy oracle,
#          {weight path: shape} for C = 32, parameter count for C = 256 by hand).
MODULES = {
    "self_attention": (
        SelfAttentionSelector, {}, self_attention_oracle,
        {"query/kernel": (C, C // 8), "query/bias": (C // 8,), "key/kernel": (C, C // 8)},
        2 * 256 * 32 + 32),
    "external_attention": (
        ExternalAttentionSelector, {}, external_attention_oracle,
        {"memory_key/kernel": (C, 64), "memory_value/kernel": (64, C)},
        2 * 256 * 64),
    "bam": (
        BAMSelector, {}, bam_oracle,
        {"channel_reduce/kernel": (C, C // 16), "channel_reduce/bias": (C // 16,),
         "channel_expand/kernel": (C // 16, C), "channel_expand/bias": (C,),
         "spatial_reduce/kernel": (1, 1, C, C // 16), "spatial_reduce/bias": (C // 16,),
         "spatial_dilated_0/kernel": (3, 3, C // 16, C // 16),
         "spatial_dilated_0/bias": (C // 16,),
         "spatial_dilated_1/kernel": (3, 3, C // 16, C // 16),
         "spatial_dilated_1/bias": (C // 16,),
         "spatial_out/kernel": (1, 1, C // 16, 1), "spatial_out/bias": (1,)},
        # channel MLP 256->16->256, spatial 1x1 256->16, two 3x3 16->16, 1x1 16->1
        (256 * 16 + 16 + 16 * 256 + 256) + (256 * 16 + 16 + 2 * (9 * 16 * 16 + 16) + 16 + 1)),
    "triplet_attention": (
        TripletAttentionSelector, {}, triplet_oracle,
        {f"{branch}/{path}": shape for branch in ("gate_cw", "gate_hc", "gate_hw")
         for path, shape in (("conv/kernel", (7, 7, 2, 1)), ("norm/gamma", (1,)),
                             ("norm/beta", (1,)))},
        3 * (7 * 7 * 2 + 2)),
}
ALL = [{"testcase_name": name, "name": name} for name in MODULES]
# Modules whose significance has exact ties on a constant map (no zero-padded convs).
POSITION_FREE = [case for case in ALL if case["name"] in ("self_attention",
                                                          "external_attention")]


def make(name, num_patches=P, channels=C, seed=0):
    """A module with Glorot-scale weights: the reference gain 0.02 would make every row of
    A nearly uniform and the significances nearly tied, a weak test of the ranking."""
    keras.utils.set_random_seed(seed)
    cls, kwargs, *_ = MODULES[name]
    return cls(num_patches, channels, initializer="glorot_normal", name="sel", **kwargs)


def features(seed):
    return np.random.default_rng(seed).standard_normal((B, H, W, C)).astype(np.float32)


class AttentionModuleTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(ALL)
    def test_matches_numpy_oracle(self, name):
        layer = make(name)
        source, translated = features(1), features(2)
        selection = layer(tf.constant(source), tf.constant(translated), SEED)
        expected_source, expected_translated, expected_indices = MODULES[name][2](
            layer, source.reshape(B, N, C).astype(np.float64),
            translated.reshape(B, N, C).astype(np.float64))
        self.assertAllEqual(selection.indices, expected_indices)
        # float32 against float64 NumPy, on O(1) values: 1e-4 of that scale.
        self.assertAllClose(selection.source, expected_source, rtol=1e-4, atol=1e-4)
        self.assertAllClose(selection.translated, expected_translated, rtol=1e-4, atol=1e-4)

    @parameterized.named_parameters(ALL)
    def test_shapes(self, name):
        for num_patches, count in ((P, P), (N + 36, N)):
            selection = make(name, num_patches)(features(1), features(2), SEED)
            self.assertEqual(selection.source.shape, (B, count, C))
            self.assertEqual(selection.translated.shape, (B, count, C))
            self.assertEqual(selection.indices.shape, (B, count))
            self.assertEqual(selection.indices.dtype, tf.int32)

    @parameterized.named_parameters(ALL)
    def test_parameters_are_the_modules_own(self, name):
        expected_shapes, count_256 = MODULES[name][3], MODULES[name][4]
        layer = make(name)
        self.assertEqual({w.path.removeprefix("sel/"): tuple(w.shape)
                          for w in layer.trainable_weights}, expected_shapes)
        self.assertEqual({w.path.split("/")[0] for w in layer.weights}, {"sel"})
        self.assertEmpty(layer.non_trainable_weights)  # no batch statistics anywhere
        self.assertEqual(make(name, channels=256).count_params(), count_256)

    @parameterized.named_parameters(ALL)
    def test_kernels_start_distinct(self, name):
        # With the product's default initializer: a shared unseeded Keras initializer would
        # give same-shaped kernels (query/key, triplet's three convs) identical values.
        keras.utils.set_random_seed(0)
        layer = MODULES[name][0](P, C)
        kernels = [w.numpy() for w in layer.trainable_weights if w.path.endswith("kernel")]
        for i, first in enumerate(kernels):
            for second in kernels[i + 1:]:
                self.assertFalse(first.shape == second.shape and np.array_equal(first, second))

    @parameterized.named_parameters(ALL)
    def test_one_set_of_weights_for_both_domains(self, name):
        layer = make(name)
        source = tf.constant(features(1))
        same = layer(source, source, SEED)
        # Exact: the same ops on the same input (and, below, on the same source rows).
        self.assertAllEqual(same.source, same.translated)
        # The translated features change neither the selection nor the source vectors.
        other = layer(source, tf.constant(features(2)), SEED)
        self.assertAllEqual(other.indices, same.indices)
        self.assertAllEqual(other.source, same.source)
        self.assertNotAllClose(other.translated, same.translated)

    @parameterized.named_parameters(POSITION_FREE)
    def test_ties_go_to_the_lower_index(self, name):
        # Every position holds the same vector, so every significance is exactly equal.
        constant = np.broadcast_to(features(1)[:, :1, :1], (B, H, W, C)).copy()
        selection = make(name)(constant, constant, SEED)
        self.assertAllEqual(selection.indices, np.tile(np.arange(P), [B, 1]))

    @parameterized.named_parameters(ALL)
    def test_optimizer_steps_change_every_weight(self, name):
        layer = make(name)
        source = features(1)
        # Opposite images: each ReLU unit of BAM's channel MLP (zero bias at start) is active
        # on exactly one of them, so none is dead for the whole batch.
        source[1] = -source[0]
        source, translated = tf.constant(source), tf.constant(features(2))
        rng = np.random.default_rng(3)
        targets = [tf.constant(rng.standard_normal((B, P, C)), tf.float32) for _ in range(2)]
        before = [w.numpy() for w in layer.trainable_weights]
        optimizer = keras.optimizers.Adam(1e-2)
        for _ in range(3):
            with tf.GradientTape() as tape:
                selection = layer(source, translated, SEED)
                loss = (tf.reduce_sum(selection.source * targets[0])
                        + tf.reduce_sum(selection.translated * targets[1]))
            optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights),
                                          layer.trainable_weights))
        for old, new in zip(before, layer.trainable_weights):
            self.assertTrue(np.any(old != new.numpy()), f"{new.path} did not change")

    @parameterized.named_parameters(ALL)
    def test_xla_matches_eager(self, name):
        layer = make(name)
        source, translated = tf.constant(features(1)), tf.constant(features(2))
        eager = layer(source, translated, SEED)
        compiled = tf.function(lambda s, t: layer(s, t, SEED), jit_compile=True)(source,
                                                                                  translated)
        self.assertAllEqual(compiled.indices, eager.indices)
        # XLA fuses and reorders the float32 sums: 1e-4 of the O(1) values.
        self.assertAllClose(compiled.source, eager.source, rtol=1e-4, atol=1e-4)
        self.assertAllClose(compiled.translated, eager.translated, rtol=1e-4, atol=1e-4)

    @parameterized.named_parameters(ALL)
    def test_config_round_trip(self, name):
        layer = make(name)
        clone = type(layer).from_config(layer.get_config())
        clone.set_weights(layer.get_weights())
        source, translated = tf.constant(features(1)), tf.constant(features(2))
        # Exact: the same weights through the same eager ops.
        self.assertAllEqual(clone(source, translated, SEED).source,
                            layer(source, translated, SEED).source)

    @parameterized.named_parameters(("self_attention", SelfAttentionSelector),
                                    ("bam", BAMSelector))
    def test_too_few_channels_is_an_actionable_error(self, cls):
        with self.assertRaisesRegex(ValueError, "has 3. Leave it out of --qs_layers"):
            cls(P, 3)
