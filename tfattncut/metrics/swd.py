"""Sliced Wasserstein distance (docs/design/metrics.md#swd), as ProGAN's
`metrics/sliced_wasserstein.py` computes it and the QS-Attn paper reports it.

Per Laplacian-pyramid level (finest first, down to 16 px), 128 random 7x7x3 neighbourhoods
per image become descriptors; each set's descriptors are normalised per colour channel by
that set's mean and std at that level, then compared by the mean Wasserstein-1 distance of
their sorted projections on 4 x 128 random unit directions. Reported x 10³.

Because each set is normalised by its own statistics, a per-channel affine colour change
applied to every image alike (a global tint or contrast change) is invisible to SWD by
design; SWD sees changes in local structure and in how colour varies between images.

ProGAN divides by the std as it is, so a set without variation in a channel (a collapsed
generator's all-black images) makes it 0/0 = NaN. Here the std is floored at STD_FLOOR:
such a channel standardises to 0 (every descriptor at the set's mean, its float32 round-off
scaled away), and the set lands at a large, finite distance from any varied set and at 0
from another flat one. Above the floor the numbers are ProGAN's.
All randomness is stateless and derived from one integer seed (see `fold_seed`).
"""
import collections

import numpy as np
import tensorflow as tf

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
SCALE = 1e3
# Under 1/50 of one 8-bit grey level on the library's [-1, 1] scale, and over 100x the
# float32 round-off the pyramid leaves on a flat image there.
STD_FLOOR = 1e-4

# The binomial 5x5 kernel of cv2.pyrDown / cv2.pyrUp.
_BINOMIAL = np.float32([1, 4, 6, 4, 1])
_GAUSSIAN = np.outer(_BINOMIAL, _BINOMIAL) / 256.0

# Stream ids for `fold_seed`, so the draws of different purposes never share a seed.
_DIRECTIONS_STREAM = 2
_SUBSAMPLE_STREAM = 3


class SWDResult(collections.namedtuple("SWDResult", ["resolutions", "per_level", "mean"])):
    """resolutions: the pyramid's sizes, finest first (min(H, W) of each level).
    per_level: SWD x 10³ of each level, same order (Python floats).
    mean: their average.
    """


def fold_seed(seed, *indices):
    """int32 [2] stateless seed for one draw: `seed` folded with each index in turn.

    `swd` draws the positions of set s (0 or 1), batch i, level l with
    fold_seed(seed, s, i, l); the directions of level l with fold_seed(seed, 2, l); the
    subsample that equalises descriptor counts at level l with fold_seed(seed, 3, l).
    """
    folded = tf.constant([seed, 0], tf.int32)
    for index in indices:
        folded = tf.random.experimental.stateless_fold_in(folded, index)
    return folded


def pyramid_resolutions(height, width):
    """Sizes min(H, W), /2, /4, ... while >= 16 (ProGAN's levels); at least one level."""
    resolutions = [min(height, width)]
    while resolutions[-1] // 2 >= MIN_RESOLUTION:
        resolutions.append(resolutions[-1] // 2)
    return resolutions


def _blur(images, gain):
    """5x5 binomial blur of [B, H, W, C] with mirror borders (scipy 'mirror', cv2 default)."""
    channels = images.shape[-1]
    kernel = tf.constant(_GAUSSIAN * gain, tf.float32)[:, :, tf.newaxis, tf.newaxis]
    kernel = tf.tile(kernel, [1, 1, channels, 1])
    padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")


def _upsample(images):
    """[B, H, W, C] -> [B, 2H, 2W, C]: zeros between samples, then the blur with gain 4."""
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    zeros = tf.zeros_like(images)
    wide = tf.reshape(tf.stack([images, zeros], axis=3), [batch, height, 2 * width, channels])
    tall = tf.reshape(tf.stack([wide, tf.zeros_like(wide)], axis=2),
                      [batch, 2 * height, 2 * width, channels])
    return _blur(tall, gain=4.0)


def laplacian_pyramid(images, num_levels):
    """[B, H, W, C] -> num_levels tensors [B, H/2^l, W/2^l, C], finest first.

    Every level but the last is a band-pass (the level minus its upsampled successor); the
    last is the low-pass residual. H and W must be divisible by 2^(num_levels - 1).
    """
    pyramid = [tf.cast(images, tf.float32)]
    for _ in range(1, num_levels):
        pyramid.append(_blur(pyramid[-1], gain=1.0)[:, ::2, ::2])
        pyramid[-2] = pyramid[-2] - _upsample(pyramid[-1])
    return pyramid


def descriptor_positions(num_images, height, width, seed):
    """Centres (y, x) of NHOODS_PER_IMAGE neighbourhoods per image: int32 [B * 128, 2].

    Rows [i*128, (i+1)*128) belong to image i; centres keep the whole 7x7 window inside.
    """
    half = NHOOD_SIZE // 2
    count = num_images * NHOODS_PER_IMAGE
    seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    y = tf.random.stateless_uniform([count], seed_y, minval=half, maxval=height - half,
                                    dtype=tf.int32)
    x = tf.random.stateless_uniform([count], seed_x, minval=half, maxval=width - half,
                                    dtype=tf.int32)
    return tf.stack([y, x], axis=1)


def extract_descriptors(level, positions):
    """7x7x3 windows of `level` [B, H, W, 3] around `positions` [B * 128, 2]: [B*128, 7, 7, 3]."""
    half = NHOOD_SIZE // 2
    count = tf.shape(positions)[0]
    image_ids = tf.range(count) // NHOODS_PER_IMAGE
    offsets = tf.range(-half, half + 1)
    ys = positions[:, 0, tf.newaxis, tf.newaxis] + offsets[tf.newaxis, :, tf.newaxis]
    xs = positions[:, 1, tf.newaxis, tf.newaxis] + offsets[tf.newaxis, tf.newaxis, :]
    ids = tf.broadcast_to(image_ids[:, tf.newaxis, tf.newaxis], tf.shape(ys + xs))
    indices = tf.stack([ids, tf.broadcast_to(ys, tf.shape(ids)),
                        tf.broadcast_to(xs, tf.shape(ids))], axis=-1)
    return tf.gather_nd(level, indices)


def normalize_descriptors(descriptors):
    """[N, 7, 7, 3] -> [N, 147] (row-major y, x, c), each colour channel standardised by its
    mean and (population) std over all N neighbourhoods and window positions, the std
    floored at STD_FLOOR."""
    # In float64: TF's float32 mean of 3.7M equal values 0.3 is off by 2e-3, which a flat
    # channel would keep as a spurious std 20x the floor.
    wide = tf.cast(descriptors, tf.float64)
    mean, variance = tf.nn.moments(wide, axes=[0, 1, 2], keepdims=True)
    normalized = (wide - mean) / tf.maximum(tf.sqrt(variance), STD_FLOOR)
    return tf.reshape(tf.cast(normalized, tf.float32), [tf.shape(descriptors)[0], -1])


def random_directions(dim, seed):
    """Unit directions [DIR_REPEATS, dim, DIRS_PER_REPEAT] (each column has norm 1)."""
    directions = tf.random.stateless_normal([DIR_REPEATS, dim, DIRS_PER_REPEAT], seed)
    return directions * tf.math.rsqrt(tf.reduce_sum(tf.square(directions), axis=1, keepdims=True))


def sliced_wasserstein(a, b, directions):
    """Mean over repeats and directions of W1 between the 1-D projections of a and b.

    a, b: [N, D] descriptors (same N); directions: [R, D, K]. With equal counts, W1 of two
    empirical 1-D distributions is the mean gap between their sorted samples. One repeat at
    a time keeps memory at N x K per set (N is 128 per image per level).
    """
    gaps = [tf.reduce_mean(tf.abs(tf.sort(tf.matmul(a, d), axis=0)
                                  - tf.sort(tf.matmul(b, d), axis=0)))
            for d in tf.unstack(directions)]
    return tf.reduce_mean(gaps)


def _set_descriptors(batches, seed, set_index):
    """Normalised descriptors of one image set per level (list of [N, 147]) and the levels'
    resolutions."""
    resolutions, shape, chunks = None, None, None
    for batch_index, images in enumerate(batches):
        images = tf.convert_to_tensor(images, tf.float32)
        if resolutions is None:
            shape = tuple(images.shape[1:])
            resolutions = pyramid_resolutions(shape[0], shape[1])
            factor = 2 ** (len(resolutions) - 1)
            if (shape[2] != 3 or min(shape[:2]) < MIN_RESOLUTION
                    or shape[0] % factor or shape[1] % factor):
                raise ValueError(
                    f"SWD needs RGB images at least {MIN_RESOLUTION} px high and wide whose "
                    f"height and width divide by {factor} (the {len(resolutions)}-level "
                    f"pyramid down to {MIN_RESOLUTION} px); found [H, W, C] = {list(shape)}. "
                    f"Resize or crop them, e.g. to 256x256x3.")
            chunks = [[] for _ in resolutions]
        elif tuple(images.shape[1:]) != shape:
            raise ValueError(
                f"All images of an SWD set must have one shape; the first batch had "
                f"{list(shape)}, batch {batch_index} has {list(images.shape[1:])}.")
        num_images = int(images.shape[0])
        for level_index, level in enumerate(laplacian_pyramid(images, len(resolutions))):
            positions = descriptor_positions(
                num_images, level.shape[1], level.shape[2],
                fold_seed(seed, set_index, batch_index, level_index))
            chunks[level_index].append(extract_descriptors(level, positions).numpy())
    if resolutions is None:
        raise ValueError(f"SWD set {set_index} is empty: no image batches were given.")
    return resolutions, [normalize_descriptors(np.concatenate(c)) for c in chunks]


def _subsample(descriptors, count, seed):
    """`count` rows of [N, D] without replacement (a stateless permutation)."""
    noise = tf.random.stateless_uniform([tf.shape(descriptors)[0]], seed)
    return tf.gather(descriptors, tf.argsort(noise)[:count])


def swd(batches_a, batches_b, seed=0):
    """SWD x 10³ between two image sets, per pyramid level and averaged.

    batches_a, batches_b: iterables (lists, generators, `tf.data.Dataset`s) of images
      [B, H, W, 3] float32; the value range does not matter (descriptors are standardised)
      as long as a channel that varies does so by more than STD_FLOOR.
      All images share one shape; both sets must have the same H and W.
    seed: integer; every random draw is derived from it (see `fold_seed`).
    When the sets differ in size, each level's larger descriptor set is subsampled to the
    smaller one's count (ProGAN compares equal-size sets).
    """
    resolutions_a, descriptors_a = _set_descriptors(batches_a, seed, 0)
    resolutions_b, descriptors_b = _set_descriptors(batches_b, seed, 1)
    if resolutions_a != resolutions_b:
        raise ValueError(
            f"SWD compares images of one size; the pyramids differ: {resolutions_a} vs "
            f"{resolutions_b}. Resize one set to the other's size.")
    distances = []
    for level_index, (a, b) in enumerate(zip(descriptors_a, descriptors_b)):
        count = min(int(a.shape[0]), int(b.shape[0]))
        subsample_seed = fold_seed(seed, _SUBSAMPLE_STREAM, level_index)
        if a.shape[0] > count:
            a = _subsample(a, count, subsample_seed)
        if b.shape[0] > count:
            b = _subsample(b, count, subsample_seed)
        directions = random_directions(
            int(a.shape[1]), fold_seed(seed, _DIRECTIONS_STREAM, level_index))
        distances.append(float(sliced_wasserstein(a, b, directions)) * SCALE)
    return SWDResult(resolutions=resolutions_a, per_level=distances,
                     mean=float(np.mean(distances)))
