"""The two-way skeleton's pieces: the identity term, which flag stacks A with B, and
`assert_trains`, which the two-way methods' tests use."""
import numpy as np
import tensorflow as tf

from tests.testdata import tiny_config, write_unaligned_folders
from tfattncut.methods import METHODS
from tfattncut.methods.two_way import identity_terms
from tfattncut.training.trainer import Trainer


def snapshot(networks):
    """{network: [weights]} of every trainable variable."""
    return {name: [v.numpy() for v in net.trainable_variables] for name, net in networks.items()}


def unchanged(before, networks):
    """Paths of the trainable variables equal to their `before` snapshot."""
    return [f"{name}: {v.path}" for name, net in networks.items()
            for v, old in zip(net.trainable_variables, before[name])
            if np.array_equal(v.numpy(), old)]


def assert_trains(test, root, still=lambda method: [], **changes):
    """Two Trainer steps of `tiny_config(root, **changes)` on two tiny images per domain:
    finite losses, and every trainable variable of every network changed except exactly the
    variables `still(method)`. Returns the trainer and the losses of each step."""
    write_unaligned_folders(root, count=2)
    trainer = Trainer(tiny_config(root, max_steps=2, **changes))
    before = snapshot(trainer.method.networks)
    history = trainer.fit()
    test.assertLen(history, 2)
    for step in history:
        for name, value in step.items():
            test.assertTrue(np.isfinite(value), f"{name} = {value}")
    frozen = {id(v) for v in still(trainer.method)}
    test.assertCountEqual(unchanged(before, trainer.method.networks),
                          [f"{name}: {v.path}" for name, net in trainer.method.networks.items()
                           for v in net.trainable_variables if id(v) in frozen])
    return trainer, history


class IdentityTermTest(tf.test.TestCase):

    def test_matches_numpy(self):
        rng = np.random.default_rng(0)
        out = {k: rng.uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
               for k in ("real_a", "real_b", "idt_a", "idt_b")}
        terms = identity_terms(out, 5.0, 0.5)
        # float32 means in TF's and NumPy's summation orders: 1e-4.
        self.assertAllClose(terms["idt_A"], 5.0 * np.abs(out["idt_a"] - out["real_a"]).mean(),
                            rtol=1e-4)
        self.assertAllClose(terms["idt_B"], 0.5 * np.abs(out["idt_b"] - out["real_b"]).mean(),
                            rtol=1e-4)


class StacksDomainsTest(tf.test.TestCase):

    def test_each_method_names_the_flag_that_stacks_a_with_b(self):
        # The trainer refuses images of several sizes (--preprocess=none) with this reason.
        for model, flag, preset_value in (("cyclegan", "lambda_identity", 0.5),
                                          ("dclgan", "lambda_IDT", 1.0),
                                          ("simdcl", "lambda_IDT", 1.0),
                                          ("uag", "lambda_identity", 0.5)):
            method = METHODS[model]
            on = tiny_config("/unused", model=model, **{flag: preset_value})
            self.assertStartsWith(method.stacks_domains(on), f"--{flag} > 0 runs")
            self.assertIsNone(method.stacks_domains(on.replace(**{flag: 0.0})))
        on = tiny_config("/unused")
        self.assertStartsWith(METHODS["cut"].stacks_domains(on), "--nce_idt runs")
        self.assertIsNone(METHODS["cut"].stacks_domains(on.replace(nce_idt=False)))
