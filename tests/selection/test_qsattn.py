"""QS-Attn selection against NumPy oracles (docs/design/selection.md#qs-attn), plus the
contract every QS-Attn selector (here and in ablations.py) keeps: blocked == dense, XLA ==
eager, per-image selection, gradients."""
import itertools

import numpy as np
from scipy import stats
import tensorflow as tf
from absl.testing import parameterized

from tfattncut.selection import ablations, qsattn
from tfattncut.selection.base import most_significant

SEED = tf.constant([3, 7], tf.int32)

# name -> (class, kwargs): every QS-Attn-family selector and layout.
SELECTORS = {
    "qs_global": (qsattn.QSGlobal, {}),
    "qs_local": (qsattn.QSLocal, {}),  # the reference layout, the default
    "qs_local_correct": (qsattn.QSLocal, {"layout": "correct"}),
    "qs_local_global": (qsattn.QSLocalGlobal, {}),
    "qs_local_global_correct": (qsattn.QSLocalGlobal, {"layout": "correct"}),
    "qs_random_route": (ablations.QSRandomRoute, {}),
    "qs_select_only": (ablations.QSSelectOnly, {}),
    "qs_self_route": (ablations.QSSelfRoute, {}),
    "informer": (ablations.Informer, {}),
}
ALL = [{"testcase_name": name, "name": name} for name in SELECTORS]
DETERMINISTIC = [case for case in ALL if case["name"] != "qs_random_route"]
# Selectors that route through the source's attention, so the translated vectors depend on X.
CROSS_ROUTED = [
    case for case in ALL if case["name"] not in ("qs_select_only", "qs_self_route")
]


def make(name, num_patches, **kwargs):
    cls, defaults = SELECTORS[name]
    return cls(num_patches, **{**defaults, **kwargs})


def features(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# NumPy oracles: straight transcriptions of docs/design/selection.md#qs-attn, one image at a
# time.


def np_softmax(logits, axis=-1):
    exp = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def np_entropy(probs, axis=-1):
    """-sum p log p with 0 log 0 = 0."""
    safe = np.where(probs > 0, probs, 1.0)
    return -np.sum(np.where(probs > 0, probs * np.log(safe), 0.0), axis=axis)


def np_smallest(scores, count):
    """Ids of the count smallest, ties to the lower id."""
    return np.argsort(scores, kind="stable")[:count]


def np_global_rows(flat):
    """A = softmax(X Xᵀ) of one image: [N, C] -> [N, N]."""
    return np_softmax(flat @ flat.T)


def np_global_select(flat, count):
    return np_smallest(np_entropy(np_global_rows(flat)), count)


def np_window(image, y, x):
    """The 7x7 zero-padded neighbourhood of (y, x) by a loop: [H, W, C] -> [49, C]."""
    height, width, channels = image.shape
    window = np.zeros([49, channels], image.dtype)
    for dy in range(7):
        for dx in range(7):
            yy, xx = y + dy - 3, x + dx - 3
            if 0 <= yy < height and 0 <= xx < width:
                window[7 * dy + dx] = image[yy, xx]
    return window


def np_windows(image):
    """[H, W, C] -> [N, 49, C], raster order."""
    height, width, _ = image.shape
    return np.stack([np_window(image, y, x) for y in range(height) for x in range(width)])


def np_local_correct(source, translated, count):
    """qs_local with the true neighbourhoods, image by image: -> (ids, source, translated)."""
    results = []
    for image, image_t in zip(source, translated):
        keys, values_t = np_windows(image), np_windows(image_t)
        weights = np_softmax(np.einsum("nkc,nc->nk", keys, image.reshape(-1, image.shape[-1])))
        ids = np_smallest(np_entropy(weights), count)
        routed = [np.einsum("pk,pkc->pc", weights[ids], v[ids]) for v in (keys, values_t)]
        results.append((ids, *routed))
    return tuple(np.stack(parts) for parts in zip(*results))


def np_unfold(batch):
    """torch.nn.functional.unfold(kernel 7, padding 3) of NHWC maps: -> [B, C*49, L],
    channel-major rows (row 49 * c + k), as torch lays them out."""
    windows = np.stack([np_windows(image) for image in batch])  # [B, L, 49, C]
    return windows.transpose(0, 3, 2, 1).reshape(batch.shape[0], -1, windows.shape[1])


def np_local_reference(source, translated, count):
    """Line by line the reference PatchSampleF local branch (networks_local.py), batched,
    with NumPy indexing rules (which torch follows): -> (ids, source, translated)."""
    batch, height, width, channels = source.shape
    length = height * width
    feat_reshape = source.reshape(batch, length, channels)
    feat_local = np_unfold(source)
    feat_k = feat_local.transpose(0, 2, 1).reshape(batch, length, 49, channels)
    feat_k = feat_k.reshape(batch * length, 49, channels)
    feat_q = feat_reshape.reshape(batch * length, channels, 1)
    attn_local = np_softmax(feat_k @ feat_q, axis=1).reshape(batch, length, -1)
    ids = np.stack([np_smallest(entropy, count) for entropy in np_entropy(attn_local)])
    attn_qs = attn_local[np.arange(batch)[:, None], ids, :].reshape(batch * count, 1, 49)

    def route(unfolded):
        feat_v = unfolded[np.arange(batch)[:, None], :, ids].transpose(0, 2, 1)
        feat_v = feat_v.reshape(batch * 49 * channels, count).reshape(batch * count, 49, channels)
        return (attn_qs @ feat_v).reshape(batch, count, channels)

    return ids, route(feat_local), route(np_unfold(translated))


def grads(selector, source, translated, seed=SEED, weights_seed=9):
    """Values and d(sum w1*source_vecs + w2*translated_vecs)/d(source, translated)."""
    source, translated = tf.constant(source), tf.constant(translated)
    with tf.GradientTape() as tape:
        tape.watch([source, translated])
        selection = selector(source, translated, seed)
        weights = features([2, *selection.source.shape], weights_seed, source.dtype.as_numpy_dtype)
        loss = tf.reduce_sum(weights[0] * selection.source) + tf.reduce_sum(
            weights[1] * selection.translated
        )
    return selection, tape.gradient(loss, [source, translated])


def translated_branch_grads(selector):
    """d(a function of Selection.translated)/d(source, translated), zeros if unconnected."""
    source = tf.constant(features([1, 4, 4, 4], 16, np.float32))
    translated = tf.constant(features([1, 4, 4, 4], 17, np.float32))
    with tf.GradientTape() as tape:
        tape.watch([source, translated])
        vectors = selector(source, translated, SEED).translated
        loss = tf.reduce_sum(vectors * features(vectors.shape, 18, np.float32))
    return tape.gradient(loss, [source, translated], unconnected_gradients="zero")


class EntropyTest(tf.test.TestCase, parameterized.TestCase):
    def test_top_k_puts_equal_values_in_index_order(self):
        # Selection by smallest entropy (largest of its negation) relies on this; torch.sort
        # in the reference does not promise it.
        scores = tf.constant([[2.0, 1.0, 1.0, 3.0, 1.0, 2.0]])
        self.assertAllEqual(tf.math.top_k(-scores, 6).indices, [[1, 2, 4, 0, 5, 3]])
        self.assertAllEqual(most_significant(-scores, 4), [[1, 2, 4, 0]])
        self.assertAllEqual(most_significant(scores, 3), [[3, 0, 5]])

    def test_seeded_ties_keep_the_ranking_of_distinct_scores(self):
        scores = tf.constant([[2.0, 1.0, 1.0, 3.0, 1.0, 2.0]])
        for seed in range(20):
            got = most_significant(scores, 6, tie_seed=tf.constant([seed, 1], tf.int32))[0]
            self.assertEqual(int(got[0]), 3)
            self.assertCountEqual(got[1:3].numpy(), [0, 5])
            self.assertCountEqual(got[3:].numpy(), [1, 2, 4])

    def test_seeded_ties_are_uniform_over_the_tied_positions(self):
        # Two positions always win; the third pick is one of the 8 tied ones. Under uniform
        # tie-breaking each is picked with p = 1/8: a chi-square test over 800 seeds (7 d.o.f.;
        # p < 1e-3 would reject uniformity).
        scores = tf.constant([[0.0] * 4 + [5.0] + [0.0] * 4 + [4.0]])
        pick = tf.function(lambda seed: most_significant(scores, 3, tie_seed=seed),
                           jit_compile=True)
        counts = np.zeros(10)
        for seed in range(800):
            got = pick(tf.constant([seed, 11], tf.int32)).numpy()[0]
            self.assertAllEqual(got[:2], [4, 9])
            counts[got[2]] += 1
        self.assertAllEqual(counts[[4, 9]], [0, 0])
        _, p_value = stats.chisquare(counts[[0, 1, 2, 3, 5, 6, 7, 8]])
        self.assertGreater(p_value, 1e-3)

    def test_seeded_ties_agree_with_and_without_xla(self):
        scores = tf.constant(np.round(features([3, 40], 5), 0))  # many exact ties
        seed = tf.constant([4, 2], tf.int32)
        compiled = tf.function(lambda s: most_significant(s, 12, tie_seed=seed),
                               jit_compile=True)
        self.assertAllEqual(compiled(scores), most_significant(scores, 12, tie_seed=seed))

    def test_zero_entropy_fraction_counts_one_hot_rows(self):
        selector = qsattn.QSGlobal(4)
        uniform = tf.zeros([1, 2, 2, 3])  # every row of A uniform: entropy log 4
        self.assertEqual(float(selector.zero_entropy_fraction(uniform)), 0.0)
        peaked = tf.constant(np.eye(4).reshape([1, 2, 2, 4]) * 100.0, tf.float32)
        self.assertEqual(float(selector.zero_entropy_fraction(peaked)), 1.0)

    @parameterized.named_parameters(
        ("moderate", [[0.5, -1.0, 2.0, 0.0]]),
        ("underflow", [[0.0, -2000.0, 5.0, -1e4]]),  # exp underflows: 0 log 0 terms
        ("large", [[3000.0, 2999.0, 0.0, 2990.0]]),  # would cancel without the shift
        ("uniform", [[4.0, 4.0, 4.0, 4.0]]),
    )
    def test_softmax_entropy(self, logits):
        logits = np.array(logits)
        for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-5)):
            got = qsattn.softmax_entropy(tf.constant(logits, dtype))
            self.assertAllClose(got, np_entropy(np_softmax(logits)), atol=tolerance, rtol=0)

    def test_peaked_rows_have_exactly_zero_entropy(self):
        # The reference ties thousands of such rows at 0; ours must not go negative.
        got = qsattn.softmax_entropy(tf.constant([[200.0, 0.0, -50.0], [0.0, 0.0, 300.0]]))
        # Exact: exp(0) = 1 and the other terms underflow to 0 in float32, so log 1 - 0 / 1.
        self.assertAllEqual(got, [0.0, 0.0])

    @parameterized.parameters(None, 1, 4, 7, 15, 512)  # N = 15
    def test_row_scores_blockwise_equals_numpy(self, block_size):
        flat = features([2, 15, 4], seed=1)
        got = qsattn.row_scores(tf.constant(flat), qsattn.softmax_entropy, block_size)
        expected = [np_entropy(np_global_rows(image)) for image in flat]
        self.assertAllClose(got, expected, atol=1e-10)


class QSGlobalTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters((True, 4), (True, 512), (False, 512))
    def test_matches_numpy(self, blocked, block_size):
        source, translated = features([2, 3, 5, 4], 1), features([2, 3, 5, 4], 2)
        selector = qsattn.QSGlobal(6, block_size=block_size, blocked=blocked, dtype="float64")
        got = selector(source, translated, SEED)
        for b in range(2):
            flat, flat_t = source[b].reshape(15, 4), translated[b].reshape(15, 4)
            ids = np_global_select(flat, 6)
            rows = np_global_rows(flat)[ids]
            self.assertAllEqual(got.indices[b], ids)
            self.assertAllClose(got.source[b], rows @ flat)
            self.assertAllClose(got.translated[b], rows @ flat_t)

    def test_exact_ties_go_to_the_lower_index(self):
        # Integer features: every dot product is exact, so duplicated positions have
        # bit-identical entropies in NumPy and TF alike.
        rng = np.random.default_rng(4)
        palette = rng.integers(-2, 3, size=[3, 4]).astype(np.float32)
        flat = palette[rng.integers(0, 3, size=16)]
        entropy = np_entropy(np_global_rows(flat.astype(np.float64)))
        ids = np_smallest(entropy, 7)
        self.assertLess(len(np.unique(entropy[ids])), 7, "the oracle must contain ties")
        for blocked in (True, False):
            selector = qsattn.QSGlobal(7, block_size=5, blocked=blocked, tie_break="index")
            got = selector(flat.reshape(1, 4, 4, 4), flat.reshape(1, 4, 4, 4), SEED)
            self.assertAllEqual(got.indices[0], ids)

    def test_num_patches_above_n_returns_all_positions(self):
        source = features([1, 2, 3, 4], 5, np.float32)
        got = qsattn.QSGlobal(100)(source, source, SEED)
        self.assertEqual(got.source.shape, (1, 6, 4))
        self.assertAllEqual(np.sort(got.indices[0]), np.arange(6))

    def test_errors_name_the_setting(self):
        with self.assertRaisesRegex(ValueError, "block_size"):
            qsattn.QSGlobal(4, block_size=0)
        with self.assertRaisesRegex(ValueError, "qs_local_layout"):
            qsattn.QSLocal(4, layout="torch")
        with self.assertRaisesRegex(ValueError, "same NCE layer"):
            qsattn.QSGlobal(4)(tf.zeros([1, 4, 4, 3]), tf.zeros([1, 4, 4, 5]), SEED)


class LocalTest(tf.test.TestCase, parameterized.TestCase):
    def test_windows_match_a_loop(self):
        image = features([2, 4, 5, 3], 6)
        ids = np.array([[0, 19, 7, 12], [4, 15, 3, 0]], np.int32)
        got = qsattn.local_windows(tf.constant(image), ids)
        for b in range(2):
            for p, i in enumerate(ids[b]):
                # Padding and a gather copy values: exact.
                self.assertAllEqual(got[b, p], np_window(image[b], i // 5, i % 5))

    def test_reference_layouts_match_torch_unfold(self):
        image = features([2, 4, 5, 3], 7)
        batch, length, channels = 2, 20, 3
        windows = qsattn.local_windows(tf.constant(image), qsattn.all_positions(image))
        unfolded = np_unfold(image)
        # Keys: the unfolded [C*49] vector of each position read as [49, C]. Windows,
        # transposes and reshapes copy values on both sides: exact.
        self.assertAllEqual(
            qsattn.reference_keys(windows),
            unfolded.transpose(0, 2, 1).reshape(batch, length, 49, channels),
        )
        # Values: the reference's gather, permute and view of the selected windows.
        ids = np.array([[3, 0, 17, 9], [11, 2, 19, 5]], np.int32)
        gathered = unfolded[np.arange(batch)[:, None], :, ids].transpose(0, 2, 1)
        expected = gathered.reshape(batch * 49 * channels, 4).reshape(batch, 4, 49, channels)
        windows = qsattn.local_windows(tf.constant(image), ids)
        self.assertAllEqual(qsattn.reference_values(windows), expected)  # copies: exact
        self.assertNotAllClose(expected, windows)  # the layouts really differ

    @parameterized.named_parameters(
        ("correct", "correct", np_local_correct),
        ("reference", "reference", np_local_reference),
    )
    def test_qs_local_matches_numpy(self, layout, oracle):
        source, translated = features([2, 5, 6, 4], 8), features([2, 5, 6, 4], 9)
        got = qsattn.QSLocal(7, layout=layout, dtype="float64")(source, translated, SEED)
        ids, expected_source, expected_translated = oracle(source, translated, 7)
        self.assertAllEqual(got.indices, ids)
        self.assertAllClose(got.source, expected_source)
        self.assertAllClose(got.translated, expected_translated)

    @parameterized.parameters("correct", "reference")
    def test_qs_local_global_routes_with_global_rows(self, layout):
        source, translated = features([2, 5, 6, 4], 10), features([2, 5, 6, 4], 11)
        got = qsattn.QSLocalGlobal(7, layout=layout, block_size=8, dtype="float64")(
            source, translated, SEED
        )
        local = qsattn.QSLocal(7, layout=layout, dtype="float64")(source, translated, SEED)
        self.assertAllEqual(got.indices, local.indices)
        for b in range(2):
            flat, flat_t = source[b].reshape(30, 4), translated[b].reshape(30, 4)
            rows = np_global_rows(flat)[local.indices[b].numpy()]
            self.assertAllClose(got.source[b], rows @ flat)
            self.assertAllClose(got.translated[b], rows @ flat_t)


class SelectorContractTest(tf.test.TestCase, parameterized.TestCase):
    """What every QS-Attn selector promises, whatever its select/route steps."""

    @parameterized.named_parameters(DETERMINISTIC)
    def test_all_zero_features_tie_everywhere_and_index_rule_picks_the_first_ids(self, name):
        zeros = tf.zeros([2, 4, 4, 3])
        got = make(name, 5, block_size=3, tie_break="index")(zeros, zeros, SEED)
        self.assertAllEqual(got.indices, [list(range(5))] * 2)

    @parameterized.named_parameters(DETERMINISTIC)
    def test_random_rule_breaks_ties_by_the_seed_alike_for_every_image(self, name):
        zeros = tf.zeros([2, 4, 4, 3])
        selector = make(name, 5, block_size=3)
        self.assertEqual(selector.tie_break, "random")  # the default
        got = selector(zeros, zeros, SEED).indices
        order = most_significant(tf.zeros([1, 16]), 16, tie_seed=SEED)[0]
        self.assertAllEqual(got, [order[:5]] * 2)
        self.assertNotAllEqual(got[0], list(range(5)))
        self.assertAllEqual(selector(zeros, zeros, SEED).indices, got)  # same seed, same ids
        other = selector(zeros, zeros, tf.constant([3, 8], tf.int32)).indices
        self.assertNotAllEqual(other, got)

    @parameterized.named_parameters(ALL)
    def test_blocked_equals_dense_values_and_gradients(self, name):
        # N = 20 is not a multiple of block_size = 3.
        source, translated = features([2, 4, 5, 6], 12), features([2, 4, 5, 6], 13)
        dense, dense_grads = grads(
            make(name, 8, blocked=False, dtype="float64"), source, translated
        )
        blocked, blocked_grads = grads(
            make(name, 8, block_size=3, dtype="float64"), source, translated
        )
        self.assertAllEqual(blocked.indices, dense.indices)
        self.assertAllClose(blocked.source, dense.source, atol=1e-12)
        self.assertAllClose(blocked.translated, dense.translated, atol=1e-12)
        for got, expected in zip(blocked_grads, dense_grads):
            self.assertAllClose(got, expected, atol=1e-12)

    @parameterized.named_parameters(ALL)
    def test_gradient_matches_finite_differences(self, name):
        source, translated = features([1, 3, 4, 3], 14), features([1, 3, 4, 3], 15)
        selector = make(name, 5, block_size=5, dtype="float64")
        for output in ("source", "translated"):
            # A graph function: compute_gradient evaluates it twice per input element.
            @tf.function
            def routed(x, output=output):
                return getattr(selector(x, translated, SEED), output)

            theoretical, numerical = tf.test.compute_gradient(routed, [source], delta=1e-6)
            self.assertAllClose(theoretical[0], numerical[0], atol=1e-6)

    @parameterized.named_parameters(CROSS_ROUTED)
    def test_source_gets_gradient_through_the_translated_branch(self, name):
        source_grad, _ = translated_branch_grads(make(name, 6, block_size=5))
        self.assertGreater(np.abs(source_grad).max(), 1e-3)

    @parameterized.named_parameters(ALL)
    def test_xla_and_dynamic_batch_graph_equal_eager(self, name):
        source = features([2, 4, 5, 6], 19, np.float32)
        translated = features([2, 4, 5, 6], 20, np.float32)
        spec = tf.TensorSpec([None, 4, 5, 6], tf.float32)
        signature = [spec, spec, tf.TensorSpec([2], tf.int32)]
        for blocked, jit in itertools.product((True, False), (True, False)):
            selector = make(name, 7, block_size=6, blocked=blocked)
            eager = selector(source, translated, SEED)
            compiled = tf.function(
                lambda *args: selector(*args), jit_compile=jit, input_signature=signature
            )
            got = compiled(source, translated, SEED)
            self.assertAllEqual(got.indices, eager.indices)
            self.assertAllClose(got.source, eager.source, atol=1e-5)
            self.assertAllClose(got.translated, eager.translated, atol=1e-5)

    @parameterized.named_parameters(ALL)
    def test_each_image_selects_its_own_queries(self, name):
        source = features([2, 4, 5, 6], 21, np.float32)
        translated = features([2, 4, 5, 6], 22, np.float32)
        selector = make(name, 7, block_size=6)
        together = selector(source, translated, SEED)
        for b in range(2):
            alone = selector(source[b : b + 1], translated[b : b + 1], SEED)
            self.assertAllEqual(together.indices[b], alone.indices[0])
            self.assertAllClose(together.source[b], alone.source[0], atol=1e-5)
            self.assertAllClose(together.translated[b], alone.translated[0], atol=1e-5)
        if name != "qs_random_route":
            self.assertNotAllEqual(together.indices[0], together.indices[1])

    @parameterized.named_parameters(ALL)
    def test_config_round_trip(self, name):
        selector = make(name, 9, block_size=17, blocked=False)
        config = selector.get_config()
        rebuilt = type(selector).from_config(config)
        self.assertEqual(rebuilt.get_config(), config)
        self.assertEqual((rebuilt.num_patches, rebuilt.block_size, rebuilt.blocked), (9, 17, False))
