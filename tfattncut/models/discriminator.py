"""The PatchGAN discriminator (`netD = basic`, `n_layers_D` = 3)."""
import keras

from tfattncut.layers import BlurDownsample, Conv, Sequential, instance_norm, make_initializer
from tfattncut.options import INIT_GAIN, INIT_TYPE


class PatchDiscriminator(Sequential):
    """Scores overlapping patches as real or fake: [B, H, W, 3] -> [B, h, w, 1] logits.

    Every 4×4 conv has symmetric zero padding 1. With anti-aliasing (CUT) the striding is a
    stride-1 conv followed by a blur downsample; with `no_antialias` (CycleGAN) the conv
    itself has stride 2. Output 30×30 for a 256² input either way.
    """

    def __init__(self, ndf=64, n_layers_D=3, init_type=INIT_TYPE, init_gain=INIT_GAIN,
                 no_antialias=False, **kwargs):
        super().__init__(**kwargs)
        init = make_initializer(init_type, init_gain)

        def strided(channels, normalise):
            conv = Conv(channels, 4, stride=2 if no_antialias else 1, padding=1,
                        initializer=init)
            stage = [conv] + ([instance_norm()] if normalise else []) + [keras.layers.LeakyReLU(0.2)]
            return stage if no_antialias else stage + [BlurDownsample()]

        layers = strided(ndf, normalise=False)
        for n in range(1, n_layers_D):
            layers += strided(ndf * min(2**n, 8), normalise=True)
        layers += [Conv(ndf * min(2**n_layers_D, 8), 4, padding=1, initializer=init),
                   instance_norm(), keras.layers.LeakyReLU(0.2),
                   Conv(1, 4, padding=1, initializer=init)]
        self.layer_list = layers


def build_discriminator(config, name="discriminator"):
    """A PatchGAN D of the run's configuration (--ndf, --n_layers_D, --init_type, --init_gain,
    --no_antialias)."""
    return PatchDiscriminator(config.ndf, config.n_layers_D, config.init_type, config.init_gain,
                              config.no_antialias, name=name)
