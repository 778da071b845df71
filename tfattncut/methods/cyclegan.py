"""CycleGAN (docs/design/baselines.md#cyclegan): L = GAN(G_ab, D_b) + GAN(G_ba, D_a)
+ λ_A·‖G_ba(G_ab(a)) − a‖₁ + λ_B·‖G_ab(G_ba(b)) − b‖₁
+ λ_identity·(λ_A·‖G_ba(a) − a‖₁ + λ_B·‖G_ab(b) − b‖₁), with a 50-fake pool per D.

The preset (configs/cyclegan.cfg) uses the reference's non-anti-aliased networks.
"""
import dataclasses

from tfattncut import losses
from tfattncut.methods.two_way import TwoWayGAN, TwoWayOptions, identity_terms
from tfattncut.options import NON_NEGATIVE, option


@dataclasses.dataclass(frozen=True)
class CycleGANOptions(TwoWayOptions):
    """CycleGAN's weights (the attention-guided CycleGAN's options inherit them)."""
    lambda_A: float = option(
        10.0, "Weight of the cycle loss A -> B -> A.", bounds=NON_NEGATIVE)
    lambda_B: float = option(
        10.0, "Weight of the cycle loss B -> A -> B.", bounds=NON_NEGATIVE)
    lambda_identity: float = option(
        0.5, "Identity L1 weight, as a fraction of lambda_A / lambda_B.", bounds=NON_NEGATIVE)


def cycle_terms(out, lambda_a, lambda_b):
    """Cycle L1: λ_A·mean|rec_a − a| (cycle_A) and λ_B·mean|rec_b − b| (cycle_B)."""
    return {"cycle_A": lambda_a * losses.l1_loss(out["rec_a"], out["real_a"]),
            "cycle_B": lambda_b * losses.l1_loss(out["rec_b"], out["real_b"])}


class CycleGAN(TwoWayGAN):
    """Two generators tied by cycle consistency; `translator_ab/ba` are what translates (the
    attention-guided subclass swaps in its compositions and keeps everything else)."""

    options = CycleGANOptions
    identity_flag = "lambda_identity"

    image_rows = {
        **TwoWayGAN.image_rows,
        "cycle/real_A|fake_B|rec_A": ("real_a", "fake_b", "rec_a"),
        "cycle/real_B|fake_A|rec_B": ("real_b", "fake_a", "rec_b"),
    }

    def translate_pair(self, real_a, real_b, seed):
        """fake_b, fake_a, their reconstructions rec_a, rec_b and, with λ_identity > 0, the
        identity images idt_a = G_ba(a), idt_b = G_ab(b). Nothing here is random."""
        identity = self.identity_on(self.config)
        fake_b, idt_b = self.with_identity(self.translator_ab, real_a, real_b, identity)
        fake_a, idt_a = self.with_identity(self.translator_ba, real_b, real_a, identity)
        out = {"real_a": real_a, "real_b": real_b, "fake_a": fake_a, "fake_b": fake_b,
               "rec_a": self.translator_ba(fake_b), "rec_b": self.translator_ab(fake_a)}
        if identity:
            out.update(idt_a=idt_a, idt_b=idt_b)
        return out

    def generator_terms(self, out):
        cfg = self.config
        terms = cycle_terms(out, cfg.lambda_A, cfg.lambda_B)
        if "idt_a" in out:
            terms.update(identity_terms(out, cfg.lambda_identity * cfg.lambda_A,
                                        cfg.lambda_identity * cfg.lambda_B))
        return terms
