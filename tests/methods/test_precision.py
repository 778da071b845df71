"""--mixed_precision: float16 / bfloat16 compute with float32 variables, losses and
attention; loss scaling under float16; checkpoints that load across precisions."""
import functools
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.methods.test_cut import random_batch
from tests.testdata import tiny_config
from tfattncut.checkpoints import make_checkpoint
from tfattncut.methods import build_method
from tfattncut.methods.cut import CUT
from tfattncut.methods.loss_scale import INITIAL_LOSS_SCALE


def precision_config(mixed_precision, **changes):
    # qs_global on the last NCE layer: its attention must stay float32 too.
    return tiny_config("/unused", mixed_precision=mixed_precision, nce_idt=False,
                       selector="qs_global", qs_layers=(16,), **changes)


def all_variables(method):
    return ([v for net in method.networks.values() for v in net.variables]
            + [v for opt in method.optimizers.values() for v in opt.variables])


class MixedPrecisionTest(tf.test.TestCase, parameterized.TestCase):

    def test_each_policy_trains_with_float32_variables_losses_and_attention(self):
        first_losses = {}
        for mixed_precision, compute in (("none", "float32"), ("mixed_float16", "float16"),
                                         ("mixed_bfloat16", "bfloat16")):
            method = build_method(precision_config(mixed_precision))
            # The policy is the run's only while the networks are built.
            self.assertEqual(keras.mixed_precision.global_policy().name, "float32")
            self.assertEqual(method.generator.layer_list[1].compute_dtype, compute)
            self.assertEqual({v.dtype for v in all_variables(method) if v.dtype.startswith("float")},
                             {"float32"}, mixed_precision)
            batch = random_batch(seed=7)
            values, images = tf.function(method.replica_step)(batch, tf.constant([0, 1]))
            for name, value in values.items():
                self.assertEqual(value.dtype, tf.float32, name)
                self.assertTrue(np.isfinite(value.numpy()), f"{mixed_precision} {name}")
            self.assertEqual(images["fake_b"].dtype, tf.float32)  # the tanh output
            features = method.generator.encode(batch["a"], method.config.nce_layers)
            self.assertEqual(features[-1].dtype, compute)
            keys, queries, _ = method.projector(features, features, tf.constant([0, 1]))
            self.assertEqual({k.dtype for k in keys + queries}, {tf.float32})  # NCE inputs
            selector = method.projector.selectors[-1]
            self.assertEqual(selector.significance(features[-1]).dtype, tf.float32)  # entropy
            first_losses[mixed_precision] = {k: float(v) for k, v in values.items()}
        # The networks start from the same float32 weights, so the first losses differ by the
        # compute dtype's rounding alone, compounded over ~20 layers: float16 (unit roundoff
        # 2^-11 ≈ 5e-4) within 1 % (observed: ≤ 0.3 %), bfloat16 (2^-8 ≈ 4e-3) within 5 %
        # (observed: ≤ 0.6 %). D_fake starts near 0 (~1e-8), so it gets an absolute bound.
        for mixed_precision, tolerance in (("mixed_float16", 1e-2), ("mixed_bfloat16", 5e-2)):
            for name in ("G_GAN", "NCE", "D_real", "D_fake", "D", "G"):
                self.assertAllClose(first_losses[mixed_precision][name],
                                    first_losses["none"][name], rtol=tolerance, atol=1e-3,
                                    msg=f"{mixed_precision} {name}")

    def test_instance_norm_statistics_stay_float32(self):
        """The generator's instance norms under float16: x² of these activations (~300)
        overflows float16 (max 65504), so statistics computed in float16 would give inf/NaN;
        float32 statistics give the NumPy normalisation, up to the float16 output's rounding."""
        method = build_method(precision_config("mixed_float16"))
        norm = method.generator.layer_list[2]
        self.assertEqual(norm.dtype_policy.name, "mixed_float16")
        rng = np.random.default_rng(0)
        x = (300 + rng.normal(0, 4, (1, 32, 32, 4))).astype(np.float16)
        out = norm(tf.constant(x))
        self.assertEqual(out.dtype, tf.float16)
        exact = x.astype(np.float64)
        mean, var = exact.mean(axis=(1, 2), keepdims=True), exact.var(axis=(1, 2), keepdims=True)
        # |output| ≲ 4: float16 rounding of the result is ≤ 2^-11 · 4 ≈ 2e-3.
        self.assertAllClose(out, (exact - mean) / np.sqrt(var + 1e-5), rtol=0, atol=4e-3)

    def test_float16_scales_its_losses(self):
        for jit in (False, True):  # the scaling runs between XLA's compiled parts
            method = build_method(precision_config("mixed_float16"))
            self.assertTrue(method.update_g.loss_scaling)
            step = tf.function(functools.partial(method.replica_step, jit_compile=jit))
            scales = []
            for i in range(3):
                values, _ = step(random_batch(seed=i), tf.constant([0, i]))
                self.assertEqual(float(values["nonfinite"]), 0.0)  # overflows do not count
                scales.append(float(method.update_g.scale))
            # 2^15 overflows float16 in this network's gradients: halved until it fits, and a
            # step is applied only when it did fit.
            self.assertLess(min(scales), INITIAL_LOSS_SCALE, msg=f"jit={jit}")
            self.assertEqual(int(method.optimizer_g.iterations),
                             3 - int(round(np.log2(INITIAL_LOSS_SCALE / scales[-1]))),
                             msg=f"jit={jit}")
        self.assertFalse(build_method(precision_config("mixed_bfloat16")).update_g.loss_scaling)

    @parameterized.parameters(("mixed_float16", "none"), ("mixed_bfloat16", "none"),
                              ("none", "mixed_float16"))
    def test_checkpoints_restore_across_precisions(self, saved_policy, restored_policy):
        def checkpoint(method):
            return make_checkpoint(**method.networks, **method.extra_state,
                                   **{f"optimizer_{k}": v for k, v in method.optimizers.items()})

        saved = build_method(precision_config(saved_policy))
        tf.function(saved.replica_step)(random_batch(), tf.constant([0, 0]))
        # Builds are deterministic and a float16 first step may be skipped (overflow): move
        # every weight, so a restore that did nothing would leave the initial ones.
        rng = np.random.default_rng(0)
        for net in saved.networks.values():
            for v in net.variables:
                v.assign_add(rng.normal(0, 1e-3, v.shape).astype(np.float32))
        prefix = checkpoint(saved).save(os.path.join(tempfile.mkdtemp(), "ckpt"))
        restored = build_method(precision_config(restored_policy))
        checkpoint(restored).restore(prefix).assert_existing_objects_matched()
        pairs = list(zip(all_variables(saved), all_variables(restored)))
        self.assertNotEmpty(pairs)
        for before, after in pairs:
            self.assertEqual(after.dtype, "float32" if before.dtype.startswith("float")
                             else before.dtype)
            self.assertAllEqual(before, after)  # float32 variables in both: copied exactly
        # The restored networks translate as the saved ones, up to the lower precision's
        # rounding: these small untrained outputs come from cancelling sums, so the error
        # is a fraction of the largest output, observed 0.4 % (float16) and 4 % (bfloat16).
        images = random_batch(seed=3)["a"]
        want = saved.generator(images).numpy()
        tolerance = 0.1 if "mixed_bfloat16" in (saved_policy, restored_policy) else 0.02
        self.assertAllClose(restored.generator(images), want, rtol=0,
                            atol=tolerance * np.abs(want).max())

    def test_building_outside_the_policy_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "--mixed_precision=mixed_bfloat16.*build_method"):
            CUT(precision_config("mixed_bfloat16"))
