"""How an option of tfattncut is declared: a dataclass field (`option`) carrying its flag's
help, choices and bounds (`Bounds`, checked when the flag is parsed and by
`config.validate`), and the values several options share (DIRECTIONS).

Methods and selectors declare their own options with these next to their code; `config`
gathers them with the shared ones into `Config`. This module imports neither, so the
methods and selectors depend on it alone and never on `config`.
"""
import dataclasses

from absl import flags


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The interval a numeric option must lie in: checked when its flag is parsed (absl's
    FATAL flags error, before anything runs) and by `validate` for configs built otherwise."""
    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value):
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self):
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        high = self.high if isinstance(self.high, int) else f"{self.high:g}"  # 2**32 - 1 in full
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {high}"
                f"{')' if self.high_open else ']'}")


POSITIVE = Bounds(0, low_open=True)             # learning rates, temperatures
NON_NEGATIVE = Bounds(0)                        # loss weights, sizes where 0 means "off"
AT_LEAST_ONE = Bounds(1)                        # counts, widths, intervals
BELOW_ONE = Bounds(0, 1, high_open=True)        # Adam betas, thresholds of a sigmoid
SEED = Bounds(0, 2**32 - 1)                     # what keras.utils.set_random_seed accepts


def register_bounds(name, bounds, flag_values=flags.FLAGS):
    """Makes parsing --NAME fail with a FATAL flags error unless its value is in `bounds`."""
    flags.register_validator(name, lambda value: value in bounds, f"must be {bounds}",
                             flag_values=flag_values)


# The translation directions: AtoB trains (and translates) A -> B; BtoA swaps the domains.
DIRECTIONS = ("AtoB", "BtoA")

# The choices of the shared options, each once: `config` offers them as flags, the code that
# acts on an option takes its list from here (so neither can offer what the other lacks).
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
CROPPING_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")  # end in a crop_size² crop
GENERATOR_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}  # --netG -> residual blocks
INIT_TYPES = ("xavier", "normal", "kaiming", "orthogonal")
# The defaults of --init_type, --init_gain and --netF_nc (the reference's), also those of the
# networks' constructors.
INIT_TYPE, INIT_GAIN = "xavier", 0.02
NETF_NC = 256
GAN_MODES = ("lsgan", "vanilla", "hinge")
LR_POLICIES = ("linear", "step", "cosine")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
# --mixed_precision -> Keras dtype policy: compute in float16 / bfloat16, variables float32.
PRECISION_POLICIES = {"none": "float32", "mixed_float16": "mixed_float16",
                      "mixed_bfloat16": "mixed_bfloat16"}


def option(default, help_text, choices=None, bounds=None, area=None):
    """A field of an options dataclass: its flag's default, help, choices and bounds.

    `area`: the --helpfull heading; None for the options of a method or selector, which
    `Config` files under "method" or "selection"."""
    return dataclasses.field(default=default, metadata={
        "help": help_text, "choices": choices, "bounds": bounds, "area": area})


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a method or selector that has none of its own."""
