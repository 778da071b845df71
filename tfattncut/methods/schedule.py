"""The reference's per-epoch learning-rate policies (--lr_policy), stepped once per epoch."""
import dataclasses
import math

from tfattncut.options import LR_POLICIES


@dataclasses.dataclass(frozen=True)
class EpochSchedule:
    """The policy and its epoch counts; the base rate is an argument, so optimisers with their
    own rate (DCLGAN's heads, --lr_F) follow the same policy as --lr.

    linear: lr·(1 − max(0, e − n_epochs)/(n_epochs_decay + 1)), never zero;
    step:   lr·0.1^⌊(e−1)/lr_decay_iters⌋;
    cosine: lr·(1 + cos(π·(e−1)/n_epochs))/2.
    """
    policy: str
    n_epochs: int
    n_epochs_decay: int
    lr_decay_iters: int

    @classmethod
    def from_config(cls, config):
        """The schedule of --lr_policy, --n_epochs, --n_epochs_decay and --lr_decay_iters."""
        return cls(config.lr_policy, config.n_epochs, config.n_epochs_decay,
                   config.lr_decay_iters)

    def __call__(self, base_lr, epoch):
        """The learning rate during 1-based `epoch` for a run whose rate starts at base_lr."""
        if self.policy == "linear":
            return base_lr * (1.0 - max(0, epoch - self.n_epochs) / (self.n_epochs_decay + 1))
        if self.policy == "step":
            return base_lr * 0.1 ** ((epoch - 1) // self.lr_decay_iters)
        if self.policy == "cosine":
            return base_lr * (1 + math.cos(math.pi * (epoch - 1) / self.n_epochs)) / 2
        raise ValueError(f"--lr_policy must be one of {', '.join(LR_POLICIES)}; got "
                         f"{self.policy!r}")
