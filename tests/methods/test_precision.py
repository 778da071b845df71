"""--mixed_precision: float16 / bfloat16 compute with float32 variables, losses and
attention; loss scaling under float16; checkpoints that load across precisions."""
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tests.methods.test_cut import random_batch
from tests.testdata import tiny_config
from tfattncut.checkpoints import make_checkpoint
from tfattncut.methods import build_method
from tfattncut.methods.cut import CUT
from tfattncut.methods.optim import INITIAL_LOSS_SCALE


def precision_config(mixed_precision, **changes):
    # qs_global on the last NCE layer: its attention must stay float32 too.
    return tiny_config("/unused", mixed_precision=mixed_precision, nce_idt=False,
                       selector="qs_global", qs_layers=(16,), **changes)


def all_variables(method):
    return ([v for net in method.networks.values() for v in net.variables]
            + [v for opt in method.optimizers.values() for v in opt.variables])


class MixedPrecisionTest(tf.test.TestCase):

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
            values, images = tf.function(method.train_step)(batch, tf.constant([0, 1]))
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
        # The networks start from the same float32 weights; at init bfloat16 (8 mantissa
        # bits) changes the losses by well under 5 % (observed: < 1 %).
        for name in ("G_GAN", "NCE", "D_real", "D"):
            self.assertAllClose(first_losses["mixed_bfloat16"][name], first_losses["none"][name],
                                rtol=5e-2, msg=name)

    def test_float16_scales_its_losses(self):
        method = build_method(precision_config("mixed_float16"))
        self.assertTrue(method.update_g.loss_scaling)
        step = tf.function(method.train_step)
        scales = []
        for i in range(3):
            values, _ = step(random_batch(seed=i), tf.constant([0, i]))
            self.assertEqual(float(values["nonfinite"]), 0.0)  # overflows do not count
            scales.append(float(method.update_g.scale))
        # 2^15 overflows float16 in this network's gradients: halved until it fits, and a
        # step is applied only when it did fit.
        self.assertLess(min(scales), INITIAL_LOSS_SCALE)
        self.assertEqual(int(method.optimizer_g.iterations),
                         3 - int(round(np.log2(INITIAL_LOSS_SCALE / scales[-1]))))
        self.assertFalse(build_method(precision_config("mixed_bfloat16")).update_g.loss_scaling)

    def test_checkpoint_of_float16_run_restores_into_float32(self):
        def checkpoint(method):
            return make_checkpoint(**method.networks, **method.extra_state,
                                   **{f"optimizer_{k}": v for k, v in method.optimizers.items()})

        half = build_method(precision_config("mixed_float16"))
        tf.function(half.train_step)(random_batch(), tf.constant([0, 0]))
        prefix = checkpoint(half).save(os.path.join(tempfile.mkdtemp(), "ckpt"))
        full = build_method(precision_config("none"))
        checkpoint(full).restore(prefix).assert_existing_objects_matched()
        for saved, restored in zip(all_variables(half), all_variables(full)):
            self.assertAllEqual(saved, restored)

    def test_building_outside_the_policy_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "--mixed_precision=mixed_bfloat16.*build_method"):
            CUT(precision_config("mixed_bfloat16"))
