"""DCLGAN / SimDCL: the dual encoder pairing, the similarity term, heads' optimiser, presets,
a short training run of each."""
import tempfile

import numpy as np
import tensorflow as tf

from tests.methods.test_two_way import assert_trains
from tests.test_config import REPO, parse
from tests.test_losses import numpy_patch_nce
from tests.testdata import tiny_config
from tfattncut.methods.dcl import DCLGAN, SimDCL, similarity_distance


def small_images(batch_size=2, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32)
            for _ in range(2)]


def embed_all(head, features):
    """A head applied to every position of [B, H, W, C] -> [B, H·W, d] (NumPy)."""
    b, h, w, c = features.shape
    return head(tf.reshape(features, [b, h * w, c])).numpy().astype(np.float64)


def numpy_direction_nce(config, key_heads, query_heads, key_features, query_features):
    """λ_NCE · mean over layers of PatchNCE over all positions, negatives from the minibatch
    (with every position selected, the loss does not depend on their order)."""
    per_layer = [numpy_patch_nce(embed_all(qh, qf), embed_all(kh, kf), config.nce_T, True)
                 for kh, qh, kf, qf in zip(key_heads, query_heads, key_features, query_features)]
    return config.lambda_NCE * np.mean(per_layer)


class LossTest(tf.test.TestCase):

    def test_similarity_distance_matches_numpy(self):
        rng = np.random.default_rng(1)
        u, v = (rng.normal(size=(3, 64)).astype(np.float32) for _ in range(2))
        # float32 sums of 64 terms in TF's and NumPy's orders: 1e-4.
        self.assertAllClose(similarity_distance(u, v), np.abs(u - v).sum(axis=1).mean(),
                            rtol=1e-4)


class DualPairingTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        # Every position of every NCE layer is selected at 16², so the oracle needs no seeds.
        self.config = tiny_config("/unused", model="dclgan", crop_size=16, load_size=16,
                                  num_patches=1024, lambda_NCE=2.0, pool_size=0,
                                  nce_includes_all_negatives_from_minibatch=True)
        self.method = DCLGAN(self.config)
        self.real_a, self.real_b = small_images()

    def test_queries_come_from_the_other_generators_encoder(self):
        m, layers = self.method, self.config.nce_layers
        out = m.translate_pair(self.real_a, self.real_b, tf.constant([1, 2]))
        terms = m.generator_terms(out)
        fake_b, fake_a = m.generator_ab(self.real_a), m.generator_ba(self.real_b)
        keys_ab = m.generator_ab.encode(self.real_a, layers)
        keys_ba = m.generator_ba.encode(self.real_b, layers)
        heads_ab, heads_ba = m.projector_ab.heads, m.projector_ba.heads
        want_ab = numpy_direction_nce(self.config, heads_ab, heads_ba, keys_ab,
                                      m.generator_ba.encode(fake_b, layers))
        want_ba = numpy_direction_nce(self.config, heads_ba, heads_ab, keys_ba,
                                      m.generator_ab.encode(fake_a, layers))
        self.assertAllClose(terms["NCE_AB"], want_ab, rtol=1e-4)
        self.assertAllClose(terms["NCE_BA"], want_ba, rtol=1e-4)
        # The same encoder embedding both (CUT's pairing) gives another loss: the test above
        # would fail for it.
        same_encoder = numpy_direction_nce(self.config, heads_ab, heads_ba, keys_ab,
                                           m.generator_ab.encode(fake_b, layers))
        self.assertNotAllClose(want_ab, same_encoder, rtol=1e-3)
        self.assertAllClose(terms["idt_A"], np.abs(m.generator_ba(self.real_a)
                                                   - self.real_a).mean(), rtol=1e-4)


class HeadOptimizerTest(tf.test.TestCase):

    def test_heads_follow_their_own_learning_rate(self):
        config = tiny_config("/unused", model="dclgan", lr_F=1e-3, beta1_F=0.9)
        method = DCLGAN(config)
        method.start_epoch(2, 1e-4)  # epoch 2 of 1 + 1: linear decay halves every rate
        self.assertAllClose(float(method.optimizer_f.learning_rate), 5e-4)
        self.assertAllClose(float(method.optimizer_g.learning_rate), 1e-4)
        self.assertAllClose((method.optimizer_f.beta_1, method.optimizer_g.beta_1), (0.9, 0.5))


class SimDCLTest(tf.test.TestCase):

    def test_similarity_term_compares_real_and_translated_of_one_domain(self):
        config = tiny_config("/unused", model="simdcl", crop_size=16, load_size=16,
                             num_patches=16, lambda_SIM=10.0, pool_size=0)
        method = SimDCL(config)
        real_a, real_b = small_images(batch_size=1, seed=3)
        out = method.translate_pair(real_a, real_b, tf.constant([4, 5]))
        terms = method.generator_terms(out)
        # At layers 12 and 16 (4×4 maps) all 16 positions are drawn: the fresh embeddings of
        # G_ab(a) are then G_ba's encoder features of it through projector_ba, reordered.
        query_features = method.generator_ba.encode(method.generator_ab(real_a),
                                                     config.nce_layers)
        for i in (3, 4):
            want = embed_all(method.projector_ba.heads[i], query_features[i])[0]
            got = out["fresh_fake_b"][i].numpy()[0]
            # Unit-length embeddings from the step's batched graph and from eager calls on
            # other shapes: oneDNN picks other kernels (on AVX-512 Xeons 2 of 256 values
            # differed by 1.4e-5), so 1e-4 on values of at most 1. A wrong pairing (another
            # encoder or head) is off by ~1e-1.
            self.assertAllClose(np.sort(got, axis=0), np.sort(want, axis=0), rtol=1e-4,
                                atol=1e-4)

        def vector(mapper, embeddings):
            return mapper(tf.stack(embeddings, axis=-1)).numpy()

        want = 10.0 * (
            np.abs(vector(method.similarity_real_a, out["keys_ab"])
                   - vector(method.similarity_fake_a, out["fresh_fake_a"])).sum()
            + np.abs(vector(method.similarity_fake_b, out["fresh_fake_b"])
                     - vector(method.similarity_real_b, out["keys_ba"])).sum())
        self.assertAllClose(terms["SIM"], want, rtol=1e-4)  # the same, summed

    def test_too_many_patches_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "--num_patches=64"):
            SimDCL(tiny_config("/unused", model="simdcl", crop_size=16, load_size=16,
                               num_patches=64))


class PresetTest(tf.test.TestCase):

    def test_presets_match_spec(self):
        dcl = parse(f"--flagfile={REPO}/configs/dclgan.cfg")
        self.assertEqual(
            (dcl.model, dcl.gan_mode, dcl.lambda_GAN, dcl.lambda_NCE, dcl.lambda_IDT,
             dcl.nce_layers, dcl.nce_includes_all_negatives_from_minibatch, dcl.pool_size,
             dcl.lr_F, dcl.beta1_F, dcl.no_antialias),
            ("dclgan", "hinge", 1.0, 2.0, 1.0, (4, 8, 12, 16), True, 0, 1e-3, 0.9, False))
        sim = parse(f"--flagfile={REPO}/configs/simdcl.cfg")
        self.assertEqual((sim.model, sim.lambda_SIM, sim.gan_mode, sim.nce_layers),
                         ("simdcl", 10.0, "hinge", (4, 8, 12, 16)))


class TrainingTest(tf.test.TestCase):

    def test_two_steps_train_everything(self):
        for model in ("dclgan", "simdcl"):
            with self.subTest(model):
                # Under hinge, while every score is inside the margin, the last bias of a D
                # gets −1 (mean over real patches) + 1 (over fake patches) = 0 exactly.
                _, history = assert_trains(
                    self, tempfile.mkdtemp(), model=model, gan_mode="hinge",
                    still=lambda method: [d.layer_list[-1].bias for d in (
                        method.discriminator_a, method.discriminator_b)])
                want = {"NCE_AB", "NCE_BA", "idt_A", "idt_B"} | (
                    {"SIM"} if model == "simdcl" else set())
                self.assertContainsSubset(want, history[-1])
