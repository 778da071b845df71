"""Attention-guided translation (docs/design/baselines.md#attention-guided-cyclegan): the
attention network A that finds the region to translate, and the composition that replaces
only it.
"""
import keras

from tfattncut.layers import Conv, ReflectionPad, Sequential, instance_norm, make_initializer
from tfattncut.models.generator import ResnetBlock
from tfattncut.options import INIT_GAIN, INIT_TYPE


class AttentionNetwork(Sequential):
    """A_S / A_T: [B, H, W, 3] in [-1, 1] -> [B, H, W, 1] in (0, 1), H and W multiples of 4.

    The small encoder-decoder of the reference code (width nf = 32): reflect pad 3, conv 7×7
    stride 2, IN, ReLU; conv 3×3 stride 2, IN, ReLU; one residual block at 2nf; twice
    [nearest ×2 upsampling, reflect pad 1, conv 3×3, IN, ReLU] (2nf, then nf); conv 7×7 to one
    channel; sigmoid. It works at a quarter of the resolution, so it costs ~1 % of G.
    """

    def __init__(self, nf=32, init_type=INIT_TYPE, init_gain=INIT_GAIN, **kwargs):
        super().__init__(**kwargs)
        init = make_initializer(init_type, init_gain)
        layers = [ReflectionPad(3), Conv(nf, 7, stride=2, initializer=init), instance_norm(),
                  keras.layers.ReLU(),
                  Conv(nf * 2, 3, stride=2, padding=1, initializer=init), instance_norm(),
                  keras.layers.ReLU(),
                  ResnetBlock(nf * 2, init)]
        for channels in (nf * 2, nf):
            layers += [keras.layers.UpSampling2D(2), ReflectionPad(1),
                       Conv(channels, 3, initializer=init), instance_norm(), keras.layers.ReLU()]
        # float32 under any policy, like the generator output it is composed with.
        layers += [Conv(1, 7, padding=3, initializer=init),
                   keras.layers.Activation("sigmoid", dtype="float32")]
        self.layer_list = layers


def compose(mask, translated, source):
    """s' = m ⊙ G(s) + (1 − m) ⊙ s: only the attended region is replaced.

    mask [B, H, W, 1] in [0, 1]; translated, source [B, H, W, 3].
    """
    return mask * translated + (1.0 - mask) * source


class AttentionTranslator(keras.Model):
    """One direction of the attention-guided model: the generator sees the whole image and the
    attention network of the *source* domain decides where its output is used.

    This is what translate / export run for `--model=uag`, so the exported graph composes.
    """

    def __init__(self, generator, attention, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.attention = attention

    def translate_with_mask(self, images):
        """[B, H, W, 3] -> (composed [B, H, W, 3], attention mask [B, H, W, 1])."""
        mask = self.attention(images)
        return compose(mask, self.generator(images), images), mask

    def call(self, images, training=None):
        return self.translate_with_mask(images)[0]


def build_attention(config, name):
    """An attention network A of the run's configuration (--uag_attention_ngf, --init_type,
    --init_gain)."""
    return AttentionNetwork(config.uag_attention_ngf, config.init_type, config.init_gain,
                            name=name)
