"""CUT and FastCUT (and, through the selector, QS-Attn and attention-based CUT).

One generator G, one PatchGAN D, projection heads F. The update of
docs/design/losses.md#update-step (the step of methods.base): D step on G(x), then the G+F
step against the *updated* D.

With label maps of the source images, the label-aware options (label_aware.py) add semantic
consistency and label-aware PatchNCE negatives, with any selector.

Non-finite numbers: D's update is gated on D's loss and gradients, G+F's on theirs
(guarded_update.GuardedUpdate); D is updated before G's gradients exist, so a non-finite G
step does not withhold D's finite update, and the step counts as skipped (`nonfinite`) if
either was.
"""
import dataclasses

import tensorflow as tf

from tfattncut import losses
from tfattncut.data.labels import IGNORE_TRAIN_ID
from tfattncut.methods import label_aware
from tfattncut.methods.base import PROBE_SHAPE, Diagnostics, Method
from tfattncut.models.discriminator import build_discriminator
from tfattncut.models import segmenter as segmenter_lib
from tfattncut.models.generator import build_generator
from tfattncut.models.heads import build_projector, layer_seeds_of
from tfattncut.options import option
from tfattncut.randomness import split_seed
from tfattncut.selection.base import SelectionMap, gather_positions
from tfattncut.selection.random import RandomSelector


@dataclasses.dataclass(frozen=True)
class CUTOptions(label_aware.LabelAwareOptions):
    """CUT's own switches and the label-aware options."""
    nce_idt: bool = option(True, "Also apply PatchNCE to G(y) vs y (identity).")
    flip_equivariance: bool = option(False, "FastCUT: flip the input batch with p=½.")


class CUT(Method):
    """Contrastive unpaired translation A→B; FastCUT is this with the fastcut preset."""

    options = CUTOptions
    image_rows = {
        "translation/real_A|fake_B|real_B": ("real_a", "fake_b", "real_b"),
        "identity/real_B|idt_B": ("real_b", "idt_b"),
    }

    @classmethod
    def check_config(cls, config):
        label_aware.check_options(config)

    @classmethod
    def input_streams(cls, config):
        streams = super().input_streams(config)
        return streams + ("a_labels",) if label_aware.uses_labels(config) else streams

    def build_networks(self, probe):
        self.generator = build_generator(self.config)
        self.discriminator = build_discriminator(self.config)
        self.discriminator(self.generator(probe))
        self.projector = build_projector(self.config, self.generator)
        if self.config.lambda_sem:
            # Frozen, it is not among `networks` (the run keeps it apart) nor any update's
            # groups; with --sem_adapt it is both.
            self.segmenter = label_aware.build_segmenter_a(self.config)

    def prepare(self, data, run_dir):
        """Semantic consistency's S_A: the run's (trained now if it has none) or
        --sem_segmenter's. An adaptive S_A restored from a checkpoint has learned since: it
        is kept."""
        cfg = self.config
        if cfg.lambda_sem and not (cfg.sem_adapt and int(self.optimizer_s.iterations)):
            label_aware.prepare_segmenter(self.segmenter, data, run_dir, cfg)

    def build_optimizers(self):
        self.optimizer_g = self.add_optimizer("generator", self.generator.trainable_variables)
        self.optimizer_d = self.add_optimizer("discriminator",
                                              self.discriminator.trainable_variables)
        self.optimizer_f = self.add_optimizer("projector", self.projector.trainable_variables)
        if self.config.sem_adapt:
            self.optimizer_s = self.add_optimizer(
                "segmenter", self.segmenter.trainable_variables,
                segmenter_lib.LEARNING_RATE, label_aware.SEGMENTER_BETA_1)

    @property
    def networks(self):
        networks = {"generator": self.generator, "discriminator": self.discriminator,
                    "projector": self.projector}
        if self.config.sem_adapt:
            networks["segmenter"] = self.segmenter
        return networks

    @classmethod
    def build_translator(cls, config, direction="AtoB"):
        """CUT is one-sided: only its trained direction exists."""
        if direction != "AtoB":
            raise ValueError(f"--direction={direction}: {config.model} is one-sided and only "
                             "translates the direction it was trained in (AtoB); train with "
                             "--direction=BtoA for the other way")
        generator = build_generator(config)
        generator(tf.zeros(PROBE_SHAPE))
        return generator, {"generator": generator}

    def discriminator_groups(self):
        groups = [(self.optimizer_d, self.discriminator.trainable_variables)]
        if self.config.sem_adapt:
            groups.append((self.optimizer_s, self.segmenter.trainable_variables))
        return groups

    def generator_groups(self):
        return [(self.optimizer_g, self.generator.trainable_variables),
                (self.optimizer_f, self.projector.trainable_variables)]

    @classmethod
    def stacks_domains(cls, config):
        return "--nce_idt runs real A and real B through the generator as one batch" \
            if config.nce_idt else None

    def forward(self, batch, seed):
        """G's pass over real_a (and real_b for the identity NCE) with the source features.
        The seed makes FastCUT's flip the same on all replicas, as on one device with the
        global batch."""
        cfg = self.config
        real_a, real_b = batch["a"], batch["b"]
        flip_seed = split_seed(seed, 3)[0]
        real = tf.concat([real_a, real_b], 0) if cfg.nce_idt else real_a
        out = {"real_a": real_a, "real_b": real_b}
        if label_aware.uses_labels(cfg):
            out["labels_a"] = batch["a_labels"]
        if cfg.flip_equivariance:
            # Integer Philox bits: the same draw with and without XLA (see random_positions).
            flipped = tf.random.stateless_uniform(
                [], flip_seed, minval=0, maxval=2, dtype=tf.int32, alg="philox") == 1
            fake, source_features = self._translate_flipped(real, flipped)
            out["flipped"] = flipped
        else:
            fake, source_features = self.generator.call_with_features(real, cfg.nce_layers)
        # tf.split, not slices: its gradient is one concat, while each slice's gradient pads
        # back to the whole batch (profiled: 0.3 s of a 256² CUT step on CPU).
        fake_b, *idt_b = tf.split(fake, 2 if cfg.nce_idt else 1)
        out.update(fake=fake, fake_b=fake_b, source_features=source_features)
        if cfg.nce_idt:
            out["idt_b"] = idt_b[0]
        return out

    def discriminator_loss(self, judged):
        """D's loss; with --sem_adapt plus S_A's CE on the translations (`judged` holds no
        gradient to G), which only S_A's variables feel."""
        cfg = self.config
        loss_d_real, loss_d_fake = losses.discriminator_terms(
            cfg.gan_mode, self.discriminator(judged["real_b"]),
            self.discriminator(judged["fake_b"]))
        loss = losses.discriminator_loss(cfg.gan_mode, loss_d_real, loss_d_fake)
        terms = {"D_real": loss_d_real, "D_fake": loss_d_fake}
        if cfg.sem_adapt:
            terms["S_fake"] = self._semantic_consistency(judged)
            loss += terms["S_fake"]
        return loss, terms

    def generator_loss(self, out, seed):
        """λ_GAN·G_GAN against the updated D, plus the PatchNCE loss (the mean of NCE and
        NCE_Y with the identity term), plus λ_sem·SEM with semantic consistency; seed: the
        patch positions, as in `forward`."""
        cfg = self.config
        _, seed_x, seed_y = split_seed(seed, 3)
        loss_g_gan = losses.generator_gan_loss(cfg.gan_mode, self.discriminator(out["fake_b"]))
        translated_features = self.generator.encode(out["fake"], cfg.nce_layers)
        if cfg.flip_equivariance:
            translated_features = [tf.cond(out["flipped"], lambda f=f: tf.reverse(f, [2]),
                                           lambda f=f: f) for f in translated_features]
        # Per domain (x: real_a, y: real_b), the features of each NCE layer.
        parts = 2 if cfg.nce_idt else 1
        source_x, *source_y = zip(*[tf.split(f, parts) for f in out["source_features"]])
        translated_x, *translated_y = zip(*[tf.split(f, parts) for f in translated_features])
        loss_nce = self._nce(source_x, translated_x, seed_x,
                             out["labels_a"] if cfg.label_nce else None)
        terms = {"G_GAN": loss_g_gan, "NCE": loss_nce}
        loss_nce_total = loss_nce
        if cfg.nce_idt:
            terms["NCE_Y"] = self._nce(source_y[0], translated_y[0], seed_y)
            loss_nce_total = 0.5 * (loss_nce + terms["NCE_Y"])
        loss = cfg.lambda_GAN * loss_g_gan + loss_nce_total
        if cfg.lambda_sem:
            terms["SEM"] = self._semantic_consistency(out)
            loss += cfg.lambda_sem * terms["SEM"]
        return loss, terms

    def _semantic_consistency(self, out):
        """CE(S_A(G(x_A)), y_A), unweighted, from `forward`'s `out` (G's term) or D's
        gradient-free copy of it (--sem_adapt's update of S_A). FastCUT's flipped batches
        translate the mirror image, whose labels are mirrored too."""
        labels = out["labels_a"]
        if self.config.flip_equivariance:
            labels = tf.cond(out["flipped"], lambda: tf.reverse(labels, [2]), lambda: labels)
        logits = self.segmenter(tf.cast(out["fake_b"], tf.float32))
        return losses.pixel_cross_entropy(logits, labels, IGNORE_TRAIN_ID)

    def diagnostics(self, images, seed):
        """Where the selector looks: a SelectionMap per non-random NCE layer, over
        images["real_a"] [B, H, W, 3].

        Significance is what the selector ranks by (for QS-Attn: minus the attention entropy,
        the heat map of the paper's Fig. 2).
        """
        _, features = self.generator.call_with_features(images["real_a"],
                                                        self.config.nce_layers)
        layer_seeds = layer_seeds_of(seed, len(features))
        maps = []
        for layer, selector, layer_features, layer_seed in zip(
                self.config.nce_layers, self.projector.selectors, features, layer_seeds):
            if isinstance(selector, RandomSelector):
                continue
            indices = selector(layer_features, layer_features, layer_seed).indices
            maps.append(SelectionMap(layer, indices, selector.significance(layer_features),
                                     tuple(layer_features.shape[1:3]),
                                     selector.zero_entropy_fraction(layer_features)))
        return Diagnostics({}, maps)

    def _translate_flipped(self, real, flipped):
        """FastCUT: G sees the (maybe) flipped batch; the source features are those of the
        unflipped images, which G's forward pass only produced when nothing was flipped."""
        nce_layers = self.config.nce_layers
        fake, features = self.generator.call_with_features(
            tf.cond(flipped, lambda: tf.reverse(real, [2]), lambda: real), nce_layers)
        source_features = tf.cond(flipped, lambda: self.generator.encode(real, nce_layers),
                                  lambda: features)
        return fake, source_features

    def _nce(self, source_features, translated_features, seed, labels=None):
        """losses.layer_mean_nce between two lists of per-layer features, through F; with
        the source's label maps `labels` int [B, H, W], label-aware (a patch labelled by
        label_aware.cell_labels at its layer's resolution and selected position)."""
        cfg = self.config
        keys, queries, positions = self.projector(list(source_features),
                                                  list(translated_features), seed)
        patch_labels = None
        if labels is not None:
            patch_labels = [
                gather_positions(label_aware.cell_labels(labels, features.shape[1:3]), indices)
                for features, indices in zip(source_features, positions)]
        return losses.layer_mean_nce(queries, keys, cfg.lambda_NCE, cfg.nce_T,
                                     cfg.nce_includes_all_negatives_from_minibatch,
                                     patch_labels)
