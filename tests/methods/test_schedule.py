"""The per-epoch learning-rate policies (methods/schedule.py)."""
import tensorflow as tf

from tfattncut.config import Config
from tfattncut.methods.schedule import EpochSchedule


def learning_rate_at_epoch(config, epoch):
    return EpochSchedule.from_config(config)(config.lr, epoch)


class LearningRateTest(tf.test.TestCase):

    def test_linear(self):
        config = Config(lr=2e-4, n_epochs=200, n_epochs_decay=200)
        self.assertAllClose(learning_rate_at_epoch(config, 1), 2e-4)
        self.assertAllClose(learning_rate_at_epoch(config, 200), 2e-4)
        self.assertAllClose(learning_rate_at_epoch(config, 201), 2e-4 * (1 - 1 / 201))
        self.assertAllClose(learning_rate_at_epoch(config, 400), 2e-4 / 201)

    def test_step_and_cosine(self):
        config = Config(lr=1.0, lr_policy="step", lr_decay_iters=10)
        self.assertAllClose(learning_rate_at_epoch(config, 10), 1.0)
        self.assertAllClose(learning_rate_at_epoch(config, 11), 0.1)
        config = Config(lr=1.0, lr_policy="cosine", n_epochs=4)
        self.assertAllClose(learning_rate_at_epoch(config, 1), 1.0)
        self.assertAllClose(learning_rate_at_epoch(config, 3), 0.5)

    def test_base_rate_is_an_argument(self):
        # The heads' --lr_F follows --lr's policy without a second config.
        schedule = EpochSchedule("linear", n_epochs=1, n_epochs_decay=1, lr_decay_iters=50)
        self.assertAllClose((schedule(1e-3, 2), schedule(2e-4, 2)), (5e-4, 1e-4))

    def test_unknown_policy_names_the_flag(self):
        with self.assertRaisesRegex(ValueError, "--lr_policy must be one of linear, step, cosine; got .plateau."):
            EpochSchedule("plateau", 1, 1, 1)(1.0, 1)
