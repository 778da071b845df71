"""The ResNet encoder-decoder generator with the reference's layer numbering.

The numbering matters: `nce_layers` name entries of this flat list
(docs/design/networks.md#layer-list), and the contrastive loss reads the features of those
entries, both from the generator's own forward pass (source features) and from an
encode-only pass over the translated image.
"""
import keras
import tensorflow as tf

from tfattncut.layers import (BlurDownsample, BlurUpsample, Conv, ReflectionPad,
                              TransposedConv, instance_norm, make_initializer)
from tfattncut.options import GENERATOR_BLOCKS, INIT_GAIN, INIT_TYPE


class ResnetBlock(keras.layers.Layer):
    """x + [reflect pad 1, conv3×3, IN, ReLU, reflect pad 1, conv3×3, IN](x)."""

    def __init__(self, channels, initializer, **kwargs):
        super().__init__(**kwargs)
        self.body = [
            ReflectionPad(1), Conv(channels, 3, initializer=initializer), instance_norm(),
            keras.layers.ReLU(),
            ReflectionPad(1), Conv(channels, 3, initializer=initializer), instance_norm(),
        ]

    def call(self, x):
        y = x
        for layer in self.body:
            y = layer(y)
        return x + y


class ResnetGenerator(keras.Model):
    """`netG = resnet_9blocks | resnet_6blocks`, NHWC images in [-1, 1].

    Layer list (index = `nce_layers` number) with anti-aliasing, as
    docs/design/networks.md#layer-list tabulates:
    0 pad, 1 conv7, 2 IN, 3 ReLU, 4 conv, 5 IN, 6 ReLU, 7 down, 8 conv, 9 IN, 10 ReLU, 11 down,
    12.. residual blocks, then up, conv, IN, ReLU (×2), pad, conv7, tanh.
    With `no_antialias` each downsampling stage is [stride-2 conv, IN, ReLU] (3 entries instead
    of 4), so the residual blocks start at 10 (CycleGAN's numbering); with `no_antialias_up`
    each upsampling stage is [stride-2 transposed conv, IN, ReLU].
    """

    def __init__(self, netG="resnet_9blocks", ngf=64, init_type=INIT_TYPE, init_gain=INIT_GAIN,
                 no_antialias=False, no_antialias_up=False, **kwargs):
        super().__init__(**kwargs)
        if netG not in GENERATOR_BLOCKS:
            raise ValueError(f"--netG must be one of {', '.join(GENERATOR_BLOCKS)}; got "
                             f"{netG!r}")
        init = make_initializer(init_type, init_gain)
        layers = [ReflectionPad(3), Conv(ngf, 7, initializer=init), instance_norm(),
                  keras.layers.ReLU()]
        for mult in (1, 2):
            channels = ngf * mult * 2
            if no_antialias:
                layers += [Conv(channels, 3, stride=2, padding=1, initializer=init),
                           instance_norm(), keras.layers.ReLU()]
            else:
                layers += [Conv(channels, 3, padding=1, initializer=init), instance_norm(),
                           keras.layers.ReLU(), BlurDownsample()]
        layers += [ResnetBlock(ngf * 4, init) for _ in range(GENERATOR_BLOCKS[netG])]
        for mult in (4, 2):
            channels = ngf * mult // 2
            if no_antialias_up:
                layers += [TransposedConv(channels, init), instance_norm(), keras.layers.ReLU()]
            else:
                layers += [BlurUpsample(), Conv(channels, 3, padding=1, initializer=init),
                           instance_norm(), keras.layers.ReLU()]
        # The output is float32 under any policy: the losses and exported images read it.
        layers += [ReflectionPad(3), Conv(3, 7, initializer=init),
                   keras.layers.Activation("tanh", dtype="float32")]
        self.layer_list = layers

    def call(self, images, training=None):
        """images [B, H, W, 3] (H, W multiples of 4) -> translated [B, H, W, 3]."""
        return self.call_with_features(images, ())[0]

    def call_with_features(self, images, nce_layers):
        """The full translation plus the features of `nce_layers` seen on the way.

        The source features of the contrastive loss are these (same weights, same input), so
        they never need a second encoder pass.
        """
        features = []
        x = images
        for index, layer in enumerate(self.layer_list):
            x = layer(x)
            if index in nce_layers:
                features.append(x)
        return x, features

    def encode(self, images, nce_layers):
        """Features of `nce_layers` only; stops after the last one (no decoder work)."""
        features = []
        x = images
        for index, layer in enumerate(self.layer_list[: max(nce_layers) + 1]):
            x = layer(x)
            if index in nce_layers:
                features.append(x)
        return features

    def feature_channels(self, nce_layers):
        """Channel count of each NCE layer's features, by a symbolic pass (no weights used;
        any image size gives the same channels)."""
        return [shape[-1] for shape in self.feature_shapes(nce_layers, 64)]

    def feature_shapes(self, nce_layers, image_size):
        """[H, W, C] of each NCE layer's features for a square `image_size` input."""
        spec = tf.TensorSpec([1, image_size, image_size, 3], tf.float32)
        outputs = tf.function(lambda x: self.encode(x, nce_layers)).get_concrete_function(
            spec).structured_outputs
        return [list(o.shape[1:]) for o in outputs]


def build_generator(config, name="generator"):
    """G of the run's configuration (--netG, --ngf, --init_type, --init_gain, --no_antialias,
    --no_antialias_up); training, translate and export all build it here."""
    return ResnetGenerator(config.netG, config.ngf, config.init_type, config.init_gain,
                           config.no_antialias, config.no_antialias_up, name=name)
