"""Cross-check against TF-GAN 2.1.0's own eval code (test extra: tensorflow-gan,
tensorflow-probability, tf-keras).

`import tensorflow_gan` fails on TF >= 2.16 (its package __init__ needs tf.estimator), so
the four eval files are executed straight from the installed package, with stand-in parent
packages that exist only while they load.
"""
import importlib.util
import os
import sys
import types
from unittest import mock

import numpy as np
import tensorflow as tf

from tfattncut.metrics import fid, inception_score, kid, streaming, swd


def _load_tfgan_eval():
    """TF-GAN's classifier_metrics and sliced_wasserstein modules, without its __init__."""
    root = importlib.util.find_spec("tensorflow_gan").submodule_search_locations[0]
    stand_ins = {}
    for name in ("tensorflow_gan", "tensorflow_gan.python", "tensorflow_gan.python.eval"):
        stand_ins[name] = types.ModuleType(name)
        stand_ins[name].__path__ = []
    loaded = {}
    with mock.patch.dict(sys.modules, stand_ins):
        for name, path in (("python.eval.eval_utils", "python/eval/eval_utils.py"),
                           ("python.contrib_utils", "python/contrib_utils.py"),
                           ("python.eval.classifier_metrics", "python/eval/classifier_metrics.py"),
                           ("python.eval.sliced_wasserstein", "python/eval/sliced_wasserstein.py")):
            full_name = "tensorflow_gan." + name
            spec = importlib.util.spec_from_file_location(full_name, os.path.join(root, path))
            module = importlib.util.module_from_spec(spec)
            sys.modules[full_name] = module
            parent, _, child = full_name.rpartition(".")
            setattr(sys.modules[parent], child, module)
            spec.loader.exec_module(module)
            loaded[child] = module
    return loaded["classifier_metrics"], loaded["sliced_wasserstein"]


class TFGANReferenceTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.classifier_metrics, cls.sliced_wasserstein = _load_tfgan_eval()
        rng = np.random.default_rng(0)
        cls.a = rng.normal(size=(300, 32))
        cls.b = rng.normal(loc=0.3, size=(300, 32)) @ rng.normal(scale=0.4, size=(32, 32))

    def test_fid_matches_frechet_classifier_distance(self):
        moments_a, moments_b = streaming.Moments(32), streaming.Moments(32)
        moments_a.update(self.a)
        moments_b.update(self.b)
        expected = self.classifier_metrics.frechet_classifier_distance_from_activations(
            self.a, self.b)
        self.assertAllClose(fid.fid(moments_a, moments_b), expected, rtol=1e-9)

    def test_mmd_matches_kernel_classifier_distance_on_one_block(self):
        a, b = self.a.astype(np.float32), self.b.astype(np.float32)
        # One block holding every row: TF-GAN's estimate is the full-set unbiased MMD².
        expected, _ = self.classifier_metrics.kernel_classifier_distance_and_std_from_activations(
            tf.constant(a), tf.constant(b), max_block_size=len(a))
        # TF-GAN's float32 kernel sums against ours: 1e-4.
        self.assertAllClose(kid.polynomial_mmd2(a, b), expected, rtol=1e-4)

    def test_inception_score_matches_classifier_score_per_split(self):
        logits = np.random.default_rng(1).normal(scale=3.0, size=(60, 12)).astype(np.float32)
        splits = [self.classifier_metrics.classifier_score_from_logits(tf.constant(part))
                  for part in np.split(logits, 3)]
        mean, std = inception_score.inception_score(logits, num_splits=3)
        # TF-GAN's float32 softmax and KL against ours: 1e-4.
        self.assertAllClose(mean, np.mean(splits), rtol=1e-4)
        self.assertAllClose(std, np.std(splits), rtol=1e-4, atol=1e-6)

    def test_laplacian_pyramid_matches(self):
        # TF-GAN's SWD normalises each patch by its own mean and std, not each channel by the
        # set's statistics as ProGAN (and docs/design/metrics.md#swd) do, so only the pyramid
        # is compared.
        images = np.random.default_rng(2).uniform(0, 255, size=(2, 32, 32, 3)).astype(np.float32)
        expected = self.sliced_wasserstein.laplacian_pyramid(tf.constant(images), 2)
        pyramid = swd.laplacian_pyramid(images, 2)
        self.assertLen(pyramid, 2)
        self.assertLen(expected, 2)
        for got, want in zip(pyramid, expected):
            # Two float32 convolutions in other orders: 1e-4 of the 0-255 range.
            self.assertAllClose(got, want, rtol=1e-4, atol=2.5e-2)
