"""Attention-guided CycleGAN (docs/design/baselines.md#attention-guided-cyclegan).

CycleGAN whose translations are compositions s' = A_S(s) ⊙ G(s) + (1 − A_S(s)) ⊙ s, so only
the attended region changes (the cycle runs through the compositions too). The attention
networks train with the generators for `--uag_attention_epochs` epochs and are then frozen;
from then on each D sees its images masked by the thresholded attention, m > τ: real t by
A_T(t), a translation by the attention of the source it came from.
"""
import dataclasses

import tensorflow as tf

from tfattncut.methods.base import PROBE_SHAPE, Diagnostics
from tfattncut.methods.cyclegan import CycleGAN, CycleGANOptions
from tfattncut.methods.two_way import direction_key
from tfattncut.models.attention import AttentionTranslator, build_attention
from tfattncut.models.generator import build_generator
from tfattncut.options import AT_LEAST_ONE, BELOW_ONE, NON_NEGATIVE, option
from tfattncut.pixels import from_unit_range, to_unit_range


@dataclasses.dataclass(frozen=True)
class UAGOptions(CycleGANOptions):
    """CycleGAN's options and the attention networks'."""
    uag_attention_epochs: int = option(
        30, "Epochs the attention networks train; then they are frozen and the "
        "discriminators see attention-masked images.", bounds=NON_NEGATIVE)
    uag_threshold: float = option(
        0.1, "Attention above this keeps a pixel in the discriminators' view.",
        bounds=BELOW_ONE)
    uag_attention_ngf: int = option(32, "Attention network width.", bounds=AT_LEAST_ONE)


def masked_view(record, threshold, masked):
    """What a D sees of a record [B, H, W, 4] (image, attention): the image times
    (attention > threshold) when `masked` (bool []), else the whole image. [B, H, W, 3]."""
    image, attention = record[..., :3], record[..., 3:]
    keep = tf.where(masked, tf.cast(attention > threshold, image.dtype), tf.ones_like(attention))
    return image * keep


class UAG(CycleGAN):
    """Pools store (image, attention) records, so a fake drawn from the pool later is masked
    by its own attention, thresholded by the rule of the current epoch."""

    options = UAGOptions
    record_channels = 4
    image_rows = {
        **CycleGAN.image_rows,
        "attention/real_A|mask_A|fake_B": ("real_a", "mask_a", "fake_b"),
        "attention/real_B|mask_B|fake_A": ("real_b", "mask_b", "fake_a"),
    }

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        # Set by start_epoch; a variable, so the compiled step reads the current value.
        self.attention_frozen = tf.Variable(False, trainable=False, name="attention_frozen")

    def build_networks(self, probe):
        super().build_networks(probe)
        self.attention_a = build_attention(self.config, "attention_a")  # A_S: where A changes
        self.attention_b = build_attention(self.config, "attention_b")  # A_T
        self._translator_ab = AttentionTranslator(self.generator_ab, self.attention_a)
        self._translator_ba = AttentionTranslator(self.generator_ba, self.attention_b)
        self._translator_ab(probe)
        self._translator_ba(probe)

    def build_optimizers(self):
        super().build_optimizers()
        self.optimizer_attention = self.add_optimizer("attention", self._attention_variables())

    def _attention_variables(self):
        return self.attention_a.trainable_variables + self.attention_b.trainable_variables

    @property
    def networks(self):
        return {**super().networks, "attention_a": self.attention_a,
                "attention_b": self.attention_b}

    @property
    def translator_ab(self):
        return self._translator_ab

    @property
    def translator_ba(self):
        return self._translator_ba

    @classmethod
    def build_translator(cls, config, direction="AtoB"):
        """The composition of one direction: G_ab with A_S (AtoB) or G_ba with A_T (BtoA)."""
        key = direction_key(direction)
        source = key[0]
        translator = AttentionTranslator(build_generator(config),
                                         build_attention(config, f"attention_{source}"))
        translator(tf.zeros(PROBE_SHAPE))
        return translator, {f"generator_{key}": translator.generator,
                            f"attention_{source}": translator.attention}

    def start_epoch(self, epoch, learning_rate):
        """After --uag_attention_epochs the attention is frozen -- its Adam gets lr 0, whose
        step lr·m̂/(√v̂ + ε) is exactly 0, so the compiled step stays the same -- and the Ds
        switch to masked images."""
        super().start_epoch(epoch, learning_rate)
        frozen = epoch > self.config.uag_attention_epochs
        self.attention_frozen.assign(frozen)
        if frozen:
            self.optimizer_attention.learning_rate = 0.0

    def generator_groups(self):
        return super().generator_groups() + [(self.optimizer_attention,
                                              self._attention_variables())]

    def translate_pair(self, real_a, real_b, seed):
        """CycleGAN's pass through the compositions, plus the attention of both reals."""
        out = super().translate_pair(real_a, real_b, seed)
        out.update(mask_a=self.attention_a(real_a), mask_b=self.attention_b(real_b))
        return out

    def records(self, out):
        """Reals with their own attention; each translation with its source's attention."""
        def record(image, mask):
            return tf.concat([image, mask], axis=-1)

        return ({"a": record(out["real_a"], out["mask_a"]),
                 "b": record(out["real_b"], out["mask_b"])},
                {"a": record(out["fake_a"], out["mask_b"]),
                 "b": record(out["fake_b"], out["mask_a"])})

    def discriminator_view(self, record):
        return masked_view(record, self.config.uag_threshold, self.attention_frozen)

    def summary_images(self, out):
        """Masks in [0, 1] shown as images in [-1, 1]."""
        images = super().summary_images(out)
        images.update(mask_a=from_unit_range(out["mask_a"]),
                      mask_b=from_unit_range(out["mask_b"]))
        return images

    def diagnostics(self, images, seed):
        """How much each attention keeps: its mean and the share above --uag_threshold (what
        the Ds see once it is frozen). Attention that collapses to 0 makes the method the
        identity, which these show at a glance."""
        del seed
        scalars = {}
        for domain in ("A", "B"):
            mask = to_unit_range(images[f"mask_{domain.lower()}"])
            scalars[f"attention/mask_{domain}_mean"] = tf.reduce_mean(mask)
            scalars[f"attention/mask_{domain}_above_threshold"] = tf.reduce_mean(
                tf.cast(mask > self.config.uag_threshold, tf.float32))
        return Diagnostics(scalars, [])
