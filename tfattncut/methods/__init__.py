"""Training methods. Each is a keras.Model with the interface the trainer and exporters use:

- `__init__(config)` builds networks and optimisers (optimisers built up front);
- `train_step(batch, seed) -> (losses, images)` per replica (tf.distribute, XLA-compilable);
- `networks`, `optimizers`, `extra_state` (dicts of what the checkpoint holds);
- `image_rows` (TensorBoard image rows), `start_epoch(epoch, learning_rate)`;
- classmethod `build_translator(config, direction) -> (translator, trackables)`: the callable
  that maps [B, H, W, 3] images in [-1, 1] for inference/export, and the objects to restore
  from a checkpoint into it (checkpoint keys as in `networks`).

Build a method with `build_method(config)`: its networks need --mixed_precision's Keras
policy while they are built (a constructor refuses any other global policy).
"""
from tfattncut.methods.cut import CUT
from tfattncut.methods.cyclegan import CycleGAN
from tfattncut.methods.dcl import DCLGAN, SimDCL
from tfattncut.methods.optim import precision_policy
from tfattncut.methods.uag import UAG

METHODS = {"cut": CUT, "cyclegan": CycleGAN, "dclgan": DCLGAN, "simdcl": SimDCL, "uag": UAG}


def build_method(config):
    """The method of config.model, its networks built under --mixed_precision's policy."""
    with precision_policy(config.mixed_precision):
        return METHODS[config.model](config)
