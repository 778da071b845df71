"""DCLGAN and SimDCL (docs/design/baselines.md#dclgan): dual contrastive learning between two
generators.

For A→B the keys are G_ab's encoder features of a, embedded by projector_ab (the reference's
H1, stop-gradient), and the queries are G_ba's encoder features of G_ab(a), embedded by
projector_ba (H2) -- the *other* generator's encoder embeds the translated image. B→A is the
mirror image, so each head always embeds the features of one generator's encoder. The loss is
λ_GAN·(GAN_AB + GAN_BA) + λ_NCE·(NCE_AB + NCE_BA) + λ_IDT·(identity L1 of both).
"""
import dataclasses

import tensorflow as tf

from tfattncut import losses
from tfattncut.methods.two_way import TwoWayGAN, TwoWayOptions, identity_terms
from tfattncut.models.heads import build_projector, layer_seeds_of
from tfattncut.models.similarity import SimilarityMapper
from tfattncut.options import BELOW_ONE, NON_NEGATIVE, POSITIVE, option
from tfattncut.randomness import split_seed
from tfattncut.selection.random import RandomSelector


@dataclasses.dataclass(frozen=True)
class DCLGANOptions(TwoWayOptions):
    """DCLGAN's identity weight and the heads' optimiser (SimDCL's options inherit them)."""
    lambda_IDT: float = option(1.0, "Weight of the identity L1.", bounds=NON_NEGATIVE)
    lr_F: float = option(1e-3, "Initial Adam learning rate of the heads.", bounds=POSITIVE)
    beta1_F: float = option(0.9, "Adam beta1 of the heads.", bounds=BELOW_ONE)


@dataclasses.dataclass(frozen=True)
class SimDCLOptions(DCLGANOptions):
    lambda_SIM: float = option(10.0, "Weight of the similarity loss.", bounds=NON_NEGATIVE)


def similarity_distance(u, v):
    """Batch mean of the L1 distance Σ_d |u − v| between vectors [B, d] (the reference's
    L1Loss('sum'), which it only runs at batch size 1)."""
    return tf.reduce_mean(tf.reduce_sum(tf.abs(u - v), axis=-1))


class DCLGAN(TwoWayGAN):
    """Two generators, two Ds, two projection heads; hinge loss and no pool in the preset."""

    options = DCLGANOptions
    identity_flag = "lambda_IDT"

    def build_networks(self, probe):
        super().build_networks(probe)
        self.projector_ab, self.projector_ba = (
            build_projector(self.config, self.generator_ab, name)
            for name in ("projector_ab", "projector_ba"))

    def build_optimizers(self):
        super().build_optimizers()
        # The reference trains the heads with PyTorch's default Adam (lr 1e-3, β 0.9, 0.999).
        self.optimizer_f = self.add_optimizer("projector", self._projector_variables(),
                                              self.config.lr_F, self.config.beta1_F)

    def _projector_variables(self):
        return self.projector_ab.trainable_variables + self.projector_ba.trainable_variables

    @property
    def networks(self):
        return {**super().networks, "projector_ab": self.projector_ab,
                "projector_ba": self.projector_ba}

    def generator_groups(self):
        return super().generator_groups() + [(self.optimizer_f, self._projector_variables())]

    def translate_pair(self, real_a, real_b, seed):
        """Both translations with the encoder features of the reals (from the same forward
        pass), the other encoder's features of each translation, and the keys and queries of
        both directions. seed: the patch positions."""
        cfg = self.config
        layers = cfg.nce_layers
        identity = self.identity_on(cfg)
        (fake_b, features_a), idt_b = self.with_identity(
            lambda x: self.generator_ab.call_with_features(x, layers), real_a, real_b, identity)
        (fake_a, features_b), idt_a = self.with_identity(
            lambda x: self.generator_ba.call_with_features(x, layers), real_b, real_a, identity)
        query_features_ab = self.generator_ba.encode(fake_b, layers)
        query_features_ba = self.generator_ab.encode(fake_a, layers)
        seed_ab, seed_ba = split_seed(seed, 2)
        # Each key projector's selector picks the positions (seeing both maps, as every
        # selector of docs/design/selection.md#the-contract does); the other head embeds the
        # queries.
        keys_ab, queries_ab, _ = self.projector_ab.select_and_embed(
            features_a, query_features_ab, seed_ab, self.projector_ba.heads)
        keys_ba, queries_ba, _ = self.projector_ba.select_and_embed(
            features_b, query_features_ba, seed_ba, self.projector_ab.heads)
        out = {"real_a": real_a, "real_b": real_b, "fake_a": fake_a, "fake_b": fake_b,
               "query_features_ab": query_features_ab, "query_features_ba": query_features_ba,
               "keys_ab": keys_ab, "queries_ab": queries_ab,
               "keys_ba": keys_ba, "queries_ba": queries_ba}
        if identity:
            out.update(idt_a=idt_a[0], idt_b=idt_b[0])
        return out

    def generator_terms(self, out):
        cfg = self.config
        terms = {f"NCE_{key.upper()}": losses.layer_mean_nce(
                     out[f"queries_{key}"], out[f"keys_{key}"], cfg.lambda_NCE, cfg.nce_T,
                     cfg.nce_includes_all_negatives_from_minibatch) for key in ("ab", "ba")}
        if "idt_a" in out:
            terms.update(identity_terms(out, cfg.lambda_IDT, cfg.lambda_IDT))
        return terms


class SimDCL(DCLGAN):
    """DCLGAN + λ_SIM·(‖S_real_a(a) − S_fake_a(G_ba(b))‖₁ + ‖S_fake_b(G_ab(a)) − S_real_b(b)‖₁):
    four small networks S map the embedded patches of one image, all layers stacked, to a
    64-d vector; a real and a translated image of the same domain should map close together.

    Real images use the keys of the NCE; translated images are embedded at fresh random
    positions by the head of the encoder that saw them (as the reference samples them).
    """

    options = SimDCLOptions

    def build_networks(self, probe):
        super().build_networks(probe)
        config = self.config
        shapes = self.generator_ab.feature_shapes(config.nce_layers, config.crop_size)
        smallest = min(h * w for h, w, _ in shapes)
        if config.num_patches > smallest:
            raise ValueError(
                f"--num_patches={config.num_patches}: simdcl stacks the patches of all "
                "--nce_layers into one map, so every layer needs that many positions, but at "
                f"--crop_size={config.crop_size} the smallest layer has {smallest}")
        count = len(config.nce_layers)
        (self.similarity_real_a, self.similarity_fake_b, self.similarity_real_b,
         self.similarity_fake_a) = (
            SimilarityMapper(count, 64, config.init_type, config.init_gain, name=name)
            for name in ("similarity_real_a", "similarity_fake_b", "similarity_real_b",
                         "similarity_fake_a"))
        self.fresh_selector = RandomSelector(config.num_patches)

    def build_optimizers(self):
        super().build_optimizers()
        self.optimizer_s = self.add_optimizer("similarity", self._similarity_variables(),
                                              self.config.lr_F, self.config.beta1_F)

    def _similarity_networks(self):
        return {"similarity_real_a": self.similarity_real_a,
                "similarity_fake_b": self.similarity_fake_b,
                "similarity_real_b": self.similarity_real_b,
                "similarity_fake_a": self.similarity_fake_a}

    def _similarity_variables(self):
        return [v for net in self._similarity_networks().values() for v in net.trainable_variables]

    @property
    def networks(self):
        return {**super().networks, **self._similarity_networks()}

    def generator_groups(self):
        return super().generator_groups() + [(self.optimizer_s, self._similarity_variables())]

    def translate_pair(self, real_a, real_b, seed):
        out = super().translate_pair(real_a, real_b, seed)
        # Seeds apart from the two of the NCE positions (DCLGAN splits `seed` in two).
        seed_b, seed_a = split_seed(seed, 4)[2:]
        out["fresh_fake_b"] = self._fresh(self.projector_ba, out["query_features_ab"], seed_b)
        out["fresh_fake_a"] = self._fresh(self.projector_ab, out["query_features_ba"], seed_a)
        return out

    def _fresh(self, projector, features, seed):
        """`projector`'s embeddings of `features` at freshly drawn positions, per layer."""
        return [head(self.fresh_selector(f, f, layer_seed).source)
                for head, f, layer_seed in zip(projector.heads, features,
                                               layer_seeds_of(seed, len(features)))]

    def generator_terms(self, out):
        terms = super().generator_terms(out)

        def vector(mapper, embeddings):
            return mapper(tf.stack(embeddings, axis=-1))  # [B, P, d, layers] -> [B, 64]

        terms["SIM"] = self.config.lambda_SIM * (
            similarity_distance(vector(self.similarity_real_a, out["keys_ab"]),
                                vector(self.similarity_fake_a, out["fresh_fake_a"]))
            + similarity_distance(vector(self.similarity_fake_b, out["fresh_fake_b"]),
                                  vector(self.similarity_real_b, out["keys_ba"])))
        return terms
