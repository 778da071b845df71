"""What the two-way baselines share
(docs/design/baselines.md#what-the-two-way-baselines-share): CycleGAN, DCLGAN / SimDCL and
the attention-guided CycleGAN all train G_ab: A→B and G_ba: B→A against discriminators D_a,
D_b (each judging images of its own domain), optionally through a pool of earlier fakes.

`TwoWayGAN` fills in methods.base's step (the update order of
docs/design/losses.md#update-step: both D steps, then the step of the generators and the
method's other G-side networks against the *updated* Ds) for all of them; a method adds its
forward pass (`translate_pair`) and its G-side loss terms (`generator_terms`).

Non-finite numbers: as in CUT, the D update is gated on the Ds' loss and gradients and the
G-side update on its own (guarded_update.GuardedUpdate); a skipped D update also leaves the
pools as they were, so a non-finite fake never enters them.
"""
import dataclasses

import tensorflow as tf

from tfattncut import losses
from tfattncut.methods.base import PROBE_SHAPE, Method
from tfattncut.methods.image_pool import ImagePool
from tfattncut.models.discriminator import build_discriminator
from tfattncut.models.generator import build_generator
from tfattncut.options import CROPPING_MODES, DIRECTIONS, NON_NEGATIVE, option
from tfattncut.randomness import split_seed

_DIRECTION_KEYS = dict(zip(DIRECTIONS, ("ab", "ba")))


@dataclasses.dataclass(frozen=True)
class TwoWayOptions:
    """What every two-way baseline lets a run choose (their own options inherit these)."""
    pool_size: int = option(
        50, "Earlier fakes kept per discriminator (0: none).", bounds=NON_NEGATIVE)


def identity_terms(out, weight_a, weight_b):
    """The identity L1 terms: idt_A = weight_a·mean|G_ba(a) − a| and
    idt_B = weight_b·mean|G_ab(b) − b| (out's idt_a, idt_b are G_ba(a), G_ab(b))."""
    return {"idt_A": weight_a * losses.l1_loss(out["idt_a"], out["real_a"]),
            "idt_B": weight_b * losses.l1_loss(out["idt_b"], out["real_b"])}


class TwoWayGAN(Method):
    """G_ab, G_ba, D_a, D_b and a fake pool per D; the shared step (see the module docstring).

    A subclass implements
      translate_pair(real_a, real_b, seed) -> out: dict with at least real_a, real_b,
        fake_a, fake_b (all [B, H, W, 3]), computed on the tape;
      generator_terms(out) -> dict of weighted G-side loss terms besides the two GAN terms;
      identity_flag: the config field whose weight > 0 turns the identity terms on;
    and may override `records` / `discriminator_view` (what the pools store and the Ds see)
    and `generator_groups` (further networks trained with the generators).
    """

    options = TwoWayOptions
    # Channels a pool stores per pixel (the attention-guided model adds its mask).
    record_channels = 3
    identity_flag = None  # set by each subclass (see above)
    image_rows = {
        "translation/real_A|fake_B": ("real_a", "fake_b"),
        "translation/real_B|fake_A": ("real_b", "fake_a"),
        "identity/real_A|idt_A": ("real_a", "idt_a"),
        "identity/real_B|idt_B": ("real_b", "idt_b"),
    }

    @classmethod
    def check_config(cls, config):
        # Views that are not cropped vary in size; a pool stores fakes of one size.
        if config.pool_size and config.preprocess not in CROPPING_MODES:
            raise ValueError(
                f"--pool_size={config.pool_size} stores fakes of one size, but "
                f"--preprocess={config.preprocess} keeps each image's own size; use a cropping "
                f"--preprocess ({', '.join(CROPPING_MODES)}) or --pool_size=0")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        shape = [config.crop_size, config.crop_size, self.record_channels]
        self.pool_a = ImagePool(config.pool_size, shape, name="pool_a")
        self.pool_b = ImagePool(config.pool_size, shape, name="pool_b")

    def build_networks(self, probe):
        self.generator_ab = build_generator(self.config)
        self.generator_ba = build_generator(self.config)
        self.discriminator_a = build_discriminator(self.config, "discriminator_a")
        self.discriminator_b = build_discriminator(self.config, "discriminator_b")
        self.discriminator_b(self.generator_ab(probe))
        self.discriminator_a(self.generator_ba(probe))

    def build_optimizers(self):
        self.optimizer_g = self.add_optimizer("generator", self._generator_variables())
        self.optimizer_d = self.add_optimizer("discriminator", self._discriminator_variables())

    def _generator_variables(self):
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    def _discriminator_variables(self):
        return (self.discriminator_a.trainable_variables
                + self.discriminator_b.trainable_variables)

    @property
    def networks(self):
        return {"generator_ab": self.generator_ab, "generator_ba": self.generator_ba,
                "discriminator_a": self.discriminator_a, "discriminator_b": self.discriminator_b}

    @property
    def extra_state(self):
        """The fake pools (empty modules when --pool_size=0) and the loss scales."""
        return {"pool_a": self.pool_a, "pool_b": self.pool_b, **super().extra_state}

    @property
    def translator_ab(self):
        """A→B as inference runs it: [B, H, W, 3] -> [B, H, W, 3]."""
        return self.generator_ab

    @property
    def translator_ba(self):
        return self.generator_ba

    @property
    def generator(self):
        """The A→B translator: what the trainer's sample grid translates with."""
        return self.translator_ab

    @classmethod
    def build_translator(cls, config, direction="AtoB"):
        """G_ab for AtoB (the trained direction), G_ba for BtoA."""
        key = direction_key(direction)
        generator = build_generator(config)
        generator(tf.zeros(PROBE_SHAPE))
        return generator, {f"generator_{key}": generator}

    def discriminator_groups(self):
        return [(self.optimizer_d, self._discriminator_variables())]

    def generator_groups(self):
        """[(optimizer, variables)] updated by the G step."""
        return [(self.optimizer_g, self._generator_variables())]

    def records(self, out):
        """({domain: real record}, {domain: fake record}) for D_a and D_b; a fake record goes
        through the pool. Plain images here."""
        return ({"a": out["real_a"], "b": out["real_b"]},
                {"a": out["fake_a"], "b": out["fake_b"]})

    def discriminator_view(self, record):
        """The image a D sees for a record [B, H, W, record_channels]."""
        return record

    @classmethod
    def identity_on(cls, config):
        return getattr(config, cls.identity_flag) > 0

    @classmethod
    def stacks_domains(cls, config):
        if cls.identity_on(config):
            return (f"--{cls.identity_flag} > 0 runs each generator over real A and real B "
                    "as one batch")
        return None

    def with_identity(self, translate, real, other, identity):
        """(translate(real), translate(other) or None): both in one pass over the concatenated
        batch when `identity`, which changes nothing since instance norm is per image.
        `translate` returns a tensor or a nest of tensors with the batch first."""
        if not identity:
            return translate(real), None
        both = translate(tf.concat([real, other], 0))
        size = tf.shape(real)[0]
        return (tf.nest.map_structure(lambda t: t[:size], both),
                tf.nest.map_structure(lambda t: t[size:], both))

    def forward(self, batch, seed):
        return self.translate_pair(batch["a"], batch["b"], split_seed(seed, 3)[0])

    def discriminator_inputs(self, out, seed):
        """Each D's real records and its fakes drawn through its pool (which gathers the
        fakes of every replica, hence outside XLA); the pools' new states are pending until
        D's update is known not to be skipped."""
        reals, fakes = self.records(out)
        judged, pending = {}, []
        for (domain, pool), pool_seed in zip((("a", self.pool_a), ("b", self.pool_b)),
                                             split_seed(seed, 3)[1:]):
            pooled, state = pool.query(tf.stop_gradient(fakes[domain]), pool_seed)
            pending.append((pool, state))
            judged.update({f"real_{domain}": tf.stop_gradient(reals[domain]),
                           f"fake_{domain}": pooled})
        return judged, pending

    def discriminator_updated(self, pending, skipped):
        """A skipped D update leaves the pools as they were."""
        for pool, state in pending:
            pool.store(state, skipped)

    def discriminator_loss(self, judged):
        """D_A + D_B, each on its domain's real records and pooled fakes."""
        terms = {}
        for domain, discriminator in (("a", self.discriminator_a), ("b", self.discriminator_b)):
            real_term, fake_term = losses.discriminator_terms(
                self.config.gan_mode,
                discriminator(self.discriminator_view(judged[f"real_{domain}"])),
                discriminator(self.discriminator_view(judged[f"fake_{domain}"])))
            terms[f"D_{domain.upper()}"] = losses.discriminator_loss(
                self.config.gan_mode, real_term, fake_term)
        return terms["D_A"] + terms["D_B"], terms

    def generator_loss(self, out, seed):
        """Both GAN terms against the updated Ds plus the method's `generator_terms`; each
        term is logged as it enters G."""
        del seed
        cfg = self.config
        _, fakes = self.records(out)
        terms = {
            "G_GAN_AB": cfg.lambda_GAN * losses.generator_gan_loss(
                cfg.gan_mode, self.discriminator_b(self.discriminator_view(fakes["b"]))),
            "G_GAN_BA": cfg.lambda_GAN * losses.generator_gan_loss(
                cfg.gan_mode, self.discriminator_a(self.discriminator_view(fakes["a"]))),
        }
        terms.update(self.generator_terms(out))
        return tf.add_n(list(terms.values())), terms


def direction_key(direction):
    """The suffix "ab" (AtoB) or "ba" (BtoA) of a generator's checkpoint key."""
    if direction not in DIRECTIONS:
        raise ValueError(f"--direction must be one of {', '.join(DIRECTIONS)}; "
                         f"got {direction!r}")
    return _DIRECTION_KEYS[direction]
