"""Training methods: the registry of --model values.

A method is a `tfattncut.methods.base.Method` (the contract: its options, input streams,
networks, optimisers, the per-replica `replica_step`, diagnostics, the translator,
checkpointed state), all in its own file. Adding one means adding that file and one line in
METHODS; --model's choices and the method's flags are read from METHODS.

Build a method with `build_method(config)`: its networks need --mixed_precision's Keras
policy while they are built (the constructor refuses any other global policy).
"""
from tfattncut.errors import InvalidValue
from tfattncut.methods.cut import CUT
from tfattncut.methods.cyclegan import CycleGAN
from tfattncut.methods.dcl import DCLGAN, SimDCL
from tfattncut.methods.precision import precision_policy
from tfattncut.methods.uag import UAG

METHODS = {"cut": CUT, "cyclegan": CycleGAN, "dclgan": DCLGAN, "simdcl": SimDCL, "uag": UAG}


def method_class(model):
    """The method class of --model=`model`."""
    if model not in METHODS:
        raise InvalidValue(f"--model must be one of {', '.join(METHODS)}; got {model!r}")
    return METHODS[model]


def build_method(config):
    """The method of config.model, its networks built under --mixed_precision's policy."""
    method = method_class(config.model)
    with precision_policy(config.mixed_precision):
        return method(config)
