"""The QS-Attn ablations against NumPy (docs/design/selection.md#ablations); the contract
they share with qs_global (blocked == dense, XLA, per image, gradients) is tested in
test_qsattn.py."""
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.selection.test_qsattn import (
    SEED,
    features,
    np_global_rows,
    np_global_select,
    translated_branch_grads,
)
from tfattncut.selection import ablations

BLOCKING = [
    {"testcase_name": "blocked", "blocked": True, "block_size": 4},  # N = 15: a padded block
    {"testcase_name": "dense", "blocked": False, "block_size": 512},
]


def flat_pair(seed):
    """Source and translated [2, 3, 5, 4] maps and their [2, 15, 4] flattenings."""
    source, translated = features([2, 3, 5, 4], seed), features([2, 3, 5, 4], seed + 1)
    return source, translated, source.reshape(2, 15, 4), translated.reshape(2, 15, 4)


class QSRandomRouteTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(BLOCKING)
    def test_random_shared_ids_route_both_domains_with_global_rows(self, blocked, block_size):
        source, translated, flat, flat_t = flat_pair(1)
        selector = ablations.QSRandomRoute(
            6, blocked=blocked, block_size=block_size, dtype="float64"
        )
        got = selector(source, translated, SEED)
        ids = got.indices[0].numpy()
        self.assertAllEqual(got.indices[1], ids)  # one draw for the whole batch
        self.assertLen(np.unique(ids), 6)
        self.assertTrue(np.all((ids >= 0) & (ids < 15)))
        for b in range(2):
            rows = np_global_rows(flat[b])[ids]
            self.assertAllClose(got.source[b], rows @ flat[b])
            self.assertAllClose(got.translated[b], rows @ flat_t[b])

    def test_ids_are_a_function_of_the_seed(self):
        source = features([1, 4, 4, 3], 3, np.float32)
        selector = ablations.QSRandomRoute(16)

        def ids(seed):
            return selector(source, source, tf.constant(seed, tf.int32)).indices[0].numpy()

        self.assertAllEqual(ids([1, 2]), ids([1, 2]))
        self.assertNotAllEqual(ids([1, 2]), ids([1, 3]))
        self.assertAllEqual(np.sort(ids([5, 6])), np.arange(16))  # P = N: a permutation


class QSSelectOnlyTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(BLOCKING)
    def test_selected_raw_vectors(self, blocked, block_size):
        source, translated, flat, flat_t = flat_pair(4)
        selector = ablations.QSSelectOnly(
            6, blocked=blocked, block_size=block_size, dtype="float64"
        )
        got = selector(source, translated, SEED)
        for b in range(2):
            ids = np_global_select(flat[b], 6)
            self.assertAllEqual(got.indices[b], ids)
            # A gather copies values: the raw vectors exactly.
            self.assertAllEqual(got.source[b], flat[b][ids])
            self.assertAllEqual(got.translated[b], flat_t[b][ids])

    def test_translated_branch_gets_no_gradient_from_source(self):
        source_grad, translated_grad = translated_branch_grads(ablations.QSSelectOnly(6))
        # No path from source (its ids carry no gradient): zeros filled in, not computed.
        self.assertAllEqual(source_grad, tf.zeros_like(source_grad))
        # The translated gradient is the loss weights at the 6 selected positions only.
        self.assertEqual(np.count_nonzero(np.abs(translated_grad).sum(-1)), 6)


class QSSelfRouteTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(BLOCKING)
    def test_each_domain_routed_by_its_own_rows(self, blocked, block_size):
        source, translated, flat, flat_t = flat_pair(6)
        selector = ablations.QSSelfRoute(6, blocked=blocked, block_size=block_size, dtype="float64")
        got = selector(source, translated, SEED)
        for b in range(2):
            ids = np_global_select(flat[b], 6)  # chosen by the source entropy
            self.assertAllEqual(got.indices[b], ids)
            self.assertAllClose(got.source[b], np_global_rows(flat[b])[ids] @ flat[b])
            self.assertAllClose(got.translated[b], np_global_rows(flat_t[b])[ids] @ flat_t[b])

    def test_translated_branch_gets_no_gradient_from_source(self):
        source_grad, translated_grad = translated_branch_grads(ablations.QSSelfRoute(6))
        # No path from source (its ids carry no gradient): zeros filled in, not computed.
        self.assertAllEqual(source_grad, tf.zeros_like(source_grad))
        # Routed by its own attention: every translated position receives gradient.
        self.assertEqual(np.count_nonzero(np.abs(translated_grad).sum(-1)), 16)


class InformerTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(BLOCKING)
    def test_largest_query_sparsity_routed_by_global_rows(self, blocked, block_size):
        source, translated, flat, flat_t = flat_pair(8)
        selector = ablations.Informer(6, blocked=blocked, block_size=block_size, dtype="float64")
        got = selector(source, translated, SEED)
        for b in range(2):
            scaled = flat[b] @ flat[b].T / np.sqrt(4)
            sparsity = scaled.max(axis=1) - scaled.mean(axis=1)
            ids = np.argsort(-sparsity, kind="stable")[:6]
            rows = np_global_rows(flat[b])[ids]
            self.assertAllEqual(got.indices[b], ids)
            self.assertAllClose(got.source[b], rows @ flat[b])
            self.assertAllClose(got.translated[b], rows @ flat_t[b])

    def test_query_sparsity_by_hand(self):
        # C = 4, so S / sqrt(C) = S / 2: rows [2, 0, -2] -> 1 - 0 and [6, 6, 0] -> 3 - 2.
        got = ablations.query_sparsity(tf.constant([[[2.0, 0.0, -2.0], [6.0, 6.0, 0.0]]]), 4)
        self.assertAllClose(got, [[1.0, 1.0]])  # small dyadic numbers: exact in any order
