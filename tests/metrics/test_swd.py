"""SWD against a NumPy / SciPy re-implementation of ProGAN's sliced_wasserstein.py: the
arithmetic with draws made here by NumPy, the seed wiring with the library's own draws (whose
distributions are checked against ProGAN's separately)."""
import numpy as np
import scipy.ndimage
import tensorflow as tf

from tfattncut.metrics import swd

# A colour change that mixes channels, so per-channel standardisation cannot undo it.
_MIXING = np.float32([[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6]])
_KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[np.newaxis, :, :, np.newaxis] / 256.0


def _numpy_pyramid(images, levels):
    """ProGAN's generate_laplacian_pyramid on NHWC, with scipy's mirror-mode convolution."""
    def pyr_up(x):
        up = np.zeros((x.shape[0], 2 * x.shape[1], 2 * x.shape[2], x.shape[3]))
        up[:, ::2, ::2] = x
        return scipy.ndimage.convolve(up, _KERNEL * 4.0, mode="mirror")

    pyramid = [images.astype(np.float64)]
    for _ in range(1, levels):
        pyramid.append(scipy.ndimage.convolve(pyramid[-1], _KERNEL, mode="mirror")[:, ::2, ::2])
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def _numpy_windows(level, centres):
    """ProGAN's flat-index gather of the 7x7x3 windows around `centres` [N, 2]."""
    image = (np.arange(len(centres)) // swd.NHOODS_PER_IMAGE)[:, None, None, None]
    dy, dx, channel = np.ogrid[-3:4, -3:4, 0:3]
    y = centres[:, 0, None, None, None] + dy[None]
    x = centres[:, 1, None, None, None] + dx[None]
    _, height, width, channels = level.shape
    return level.flat[((image * height + y) * width + x) * channels + channel]


def _standardise(windows):
    """ProGAN's per-channel standardisation, its std floored as the library documents."""
    windows = windows - windows.mean(axis=(0, 1, 2), keepdims=True)
    windows = windows / np.maximum(windows.std(axis=(0, 1, 2), keepdims=True), swd.STD_FLOOR)
    return windows.reshape(len(windows), -1)


def _numpy_swd(sets, centres_of, directions_of):
    """ProGAN's per-level SWD x 10³ for two lists of equally many image batches.

    centres_of(set, batch, level, images, height, width) -> int [images * 128, 2];
    directions_of(level, dim) -> [repeats, dim, 128] unit columns.
    """
    levels = len(swd.pyramid_resolutions(*sets[0][0].shape[1:3]))
    descriptors = []
    for set_index, batches in enumerate(sets):
        windows = [[] for _ in range(levels)]
        for batch_index, images in enumerate(batches):
            for level_index, level in enumerate(_numpy_pyramid(images, levels)):
                centres = centres_of(set_index, batch_index, level_index, len(images),
                                     *level.shape[1:3])
                windows[level_index].append(_numpy_windows(level, centres))
        descriptors.append([_standardise(np.concatenate(w)) for w in windows])
    distances = []
    for level_index, (a, b) in enumerate(zip(*descriptors)):
        gaps = [np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0)).mean()
                for d in np.asarray(directions_of(level_index, a.shape[1]), np.float64)]
        distances.append(np.mean(gaps) * 1e3)
    return distances


def _library_swd(sets, centres_of, directions_of):
    """The library's pyramid, windows, normalisation and distance with the given draws."""
    levels = len(swd.pyramid_resolutions(*sets[0][0].shape[1:3]))
    descriptors = []
    for set_index, batches in enumerate(sets):
        windows = [[] for _ in range(levels)]
        for batch_index, images in enumerate(batches):
            for level_index, level in enumerate(swd.laplacian_pyramid(images, levels)):
                centres = centres_of(set_index, batch_index, level_index, len(images),
                                     *level.shape[1:3])
                windows[level_index].append(swd.extract_descriptors(level, centres))
        descriptors.append([swd.normalize_descriptors(tf.concat(w, 0)) for w in windows])
    return [1e3 * float(swd.sliced_wasserstein(a, b, tf.constant(directions_of(level, a.shape[1]),
                                                                 tf.float32)))
            for level, (a, b) in enumerate(zip(*descriptors))]


def _progan_draws(seed):
    """ProGAN's own draws, made by NumPy: centres np.random.randint(S, H - S) with S = 3
    (whole windows inside), directions Gaussian columns scaled to unit length."""
    rng = np.random.default_rng(seed)

    def centres_of(set_index, batch_index, level_index, images, height, width):
        count = images * swd.NHOODS_PER_IMAGE
        return np.stack([rng.integers(3, height - 3, count), rng.integers(3, width - 3, count)],
                        axis=1).astype(np.int32)

    def directions_of(level_index, dim):
        directions = rng.standard_normal((swd.DIR_REPEATS, dim, swd.DIRS_PER_REPEAT))
        return directions / np.sqrt(np.square(directions).sum(axis=1, keepdims=True))

    return _memoised(centres_of), _memoised(directions_of)


def _memoised(draw):
    """The same draw for the same arguments, so the library and the oracle share it."""
    drawn = {}

    def cached(*key):
        if key not in drawn:
            drawn[key] = draw(*key)
        return drawn[key]

    return cached


def _library_draws(seed):
    """The library's draws, as `swd.swd` makes them (see `swd.fold_seed`)."""
    def centres_of(set_index, batch_index, level_index, images, height, width):
        return swd.descriptor_positions(images, height, width, swd.fold_seed(
            seed, set_index, batch_index, level_index)).numpy()

    def directions_of(level_index, dim):
        return swd.random_directions(dim, swd.fold_seed(seed, 2, level_index)).numpy()

    return centres_of, directions_of


def _images(seed, count, size=32):
    """Smooth random colour images in [-1, 1]: structure at every pyramid level."""
    noise = np.random.default_rng(seed).uniform(-1, 1, size=(count, size, size, 3))
    return scipy.ndimage.gaussian_filter(noise, sigma=(0, 1.5, 1.5, 0)).astype(np.float32) * 3


class PyramidTest(tf.test.TestCase):

    def test_matches_scipy_mirror_convolution(self):
        images = _images(0, 2, size=64)
        pyramid, expected_pyramid = swd.laplacian_pyramid(images, 3), _numpy_pyramid(images, 3)
        self.assertLen(pyramid, 3)
        self.assertLen(expected_pyramid, 3)
        for got, expected in zip(pyramid, expected_pyramid):
            # float32 convolutions against float64 SciPy, on values of O(1).
            self.assertAllClose(got, expected, rtol=1e-4, atol=1e-4)

    def test_resolutions_stop_at_16(self):
        self.assertEqual(swd.pyramid_resolutions(256, 256), [256, 128, 64, 32, 16])
        self.assertEqual(swd.pyramid_resolutions(64, 128), [64, 32, 16])


class SWDTest(tf.test.TestCase):

    def test_arithmetic_matches_numpy_with_numpy_draws(self):
        """Pyramid, windows, standardisation and sorted projections, all fed draws made by
        NumPy as ProGAN makes them (so no library randomness reaches the oracle)."""
        set_a = [_images(1, 2), _images(2, 3)]
        set_b = [_images(3, 3), _images(4, 2) * 0.5]
        draws = _progan_draws(11)
        got = _library_swd([set_a, set_b], *draws)
        expected = _numpy_swd([set_a, set_b], *draws)
        self.assertLen(got, 2)
        # float32 (sums of 147 products, sorts) against float64: 2e-4 of values ~10-100.
        self.assertAllClose(got, expected, rtol=2e-4)

    def test_matches_numpy_with_the_same_draws(self):
        """swd() end to end: which seed each draw uses, subsampling aside (equal sets)."""
        set_a = [_images(1, 2), _images(2, 3)]
        set_b = [_images(3, 3), _images(4, 2) * 0.5]
        result = swd.swd(set_a, set_b, seed=7)
        expected = _numpy_swd([set_a, set_b], *_library_draws(7))
        self.assertEqual(result.resolutions, [32, 16])
        self.assertAllClose(result.per_level, expected, rtol=2e-4)
        self.assertAllClose(result.mean, np.mean(expected), rtol=2e-4)
        # Other draws (another seed) give other estimates: the seed is used.
        self.assertNotAllClose(swd.swd(set_a, set_b, seed=8).per_level, expected, rtol=2e-4)

    def test_draws_have_progans_distributions(self):
        """Centres uniform over the integers [3, size - 4] (np.random.randint(3, size - 3)),
        directions Gaussian columns scaled to unit length: so ProGAN's N(0, 1/dim) entries."""
        centres = swd.descriptor_positions(64, 16, 32, swd.fold_seed(0, 0, 0, 0)).numpy()
        self.assertEqual(centres.shape, (64 * 128, 2))
        for axis, size in ((0, 16), (1, 32)):
            counts = np.bincount(centres[:, axis], minlength=size)
            self.assertEqual(np.flatnonzero(counts).tolist(), list(range(3, size - 3)))
            expected = len(centres) / (size - 6)
            # Poisson-like counts: each within 5 standard deviations of uniform.
            self.assertLess(np.abs(counts[3:size - 3] - expected).max(), 5 * np.sqrt(expected))
        directions = swd.random_directions(147, swd.fold_seed(0, 2, 0)).numpy()
        self.assertEqual(directions.shape, (4, 147, 128))
        # float32 sums of 147 squares in TF's and NumPy's orders.
        self.assertAllClose(np.linalg.norm(directions, axis=1), np.ones((4, 128)), atol=1e-4)
        # Gaussian, not merely unit-norm: kurtosis ≈ 3·147/149 = 2.96 (a uniform draw gives
        # 1.8); its standard error over 75,264 entries is 0.02.
        entries = directions.ravel()
        self.assertBetween(np.mean(entries**4) / np.mean(entries**2) ** 2, 2.85, 3.07)
        self.assertLess(abs(entries.mean()), 0.02 / np.sqrt(147))
        # Distinct streams and seeds draw independently.
        other = swd.random_directions(147, swd.fold_seed(0, 2, 1)).numpy()
        self.assertLess(abs(np.corrcoef(directions.ravel(), other.ravel())[0, 1]), 0.02)

    def test_identical_sets_approach_zero(self):
        # Independent neighbourhood draws leave a sampling floor that shrinks like
        # 1/sqrt(#descriptors): 4x the images, about half the distance.
        images = _images(5, 32)
        few = swd.swd([images[:8]], [images[:8]], seed=1).mean
        many = swd.swd([images], [images], seed=1).mean
        self.assertLess(many, 0.6 * few)

    def test_colour_shifts_grow_the_distance(self):
        images = _images(5, 8)
        same = swd.swd([images], [images], seed=1)
        tints = np.random.default_rng(6).uniform(-1, 1, size=(8, 1, 1, 3)).astype(np.float32)
        tinted = swd.swd([images], [images + tints], seed=1)
        # A per-image offset lives in the low-pass residual only: the band-pass level is
        # unchanged to round-off, the 16 px level grows.
        self.assertAllClose(tinted.per_level[0], same.per_level[0], rtol=1e-4)
        self.assertGreater(tinted.per_level[-1], 3.0 * same.per_level[-1])
        mixed = swd.swd([images], [images @ _MIXING], seed=1)
        for level_mixed, level_same in zip(mixed.per_level, same.per_level):
            self.assertGreater(level_mixed, 1.5 * level_same)

    def test_unequal_set_sizes_are_subsampled(self):
        images = _images(8, 14)
        small, large = [images[:8]], [images[:8], images[8:]]
        result = swd.swd(small, large, seed=2)
        self.assertLen(result.per_level, 2)
        self.assertTrue(np.all(np.isfinite(result.per_level)))
        mixed = swd.swd(small, [x @ _MIXING for x in large], seed=2)
        self.assertGreater(mixed.mean, 1.3 * result.mean)

    def test_flat_sets_are_finite_and_match_numpy(self):
        """A collapsed generator's flat images: ProGAN's 0/0 = NaN becomes 0 (std floored),
        so the set is far from a varied one and at 0 from another flat one."""
        varied = [_images(1, 2), _images(2, 2)]
        for value in (-1.0, 0.3):
            flat = [np.full([2, 32, 32, 3], value, np.float32)] * 2
            result = swd.swd(varied, flat, seed=7)
            expected = _numpy_swd([varied, flat], *_library_draws(7))
            self.assertTrue(np.all(np.isfinite(result.per_level)))
            # On 0.3 (not a binary fraction) the float32 pyramid leaves round-off of ~3e-8,
            # which the floor scales to ~3e-4 per descriptor entry against float64's ~0.
            self.assertAllClose(result.per_level, expected, rtol=1e-3)
            self.assertGreater(min(result.per_level), 100.0)
            self.assertLess(max(swd.swd(flat, flat, seed=7).per_level), 0.1)

    def test_bad_image_sizes_are_refused(self):
        with self.assertRaisesRegex(ValueError, r"divide by 2.*\[33, 40, 3\]"):
            swd.swd([np.zeros([1, 33, 40, 3], np.float32)], [np.zeros([1, 32, 32, 3])])
        with self.assertRaisesRegex(ValueError, r"at least 16 px.*\[8, 8, 3\]"):
            swd.swd([np.zeros([1, 8, 8, 3], np.float32)], [np.zeros([1, 8, 8, 3])])
        with self.assertRaisesRegex(ValueError, "pyramids differ"):
            swd.swd([_images(0, 1, size=32)], [_images(0, 1, size=64)])
