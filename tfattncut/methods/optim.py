"""Adam as the reference applies it, and the per-epoch learning-rate policies."""
import math

import keras
from keras import ops


class TorchAdam(keras.optimizers.Adam):
    """Adam with PyTorch's epsilon placement: step = lr·m̂ / (√v̂ + ε).

    Keras adds ε to √v (before bias correction), which differs from the reference when v is
    small; training.md asks for PyTorch's form.
    """

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step)
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(correction_2)), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / correction_1), denominator))


def make_adam(config):
    """Adam with the run's lr and betas, ε 1e-8 (PyTorch's default)."""
    return TorchAdam(learning_rate=config.lr, beta_1=config.beta1, beta_2=config.beta2,
                     epsilon=1e-8)


def learning_rate_at_epoch(config, epoch):
    """The learning rate during 1-based `epoch` (the reference's scheduler, stepped per epoch).

    linear: lr·(1 − max(0, e − n_epochs)/(n_epochs_decay + 1)), never zero;
    step:   lr·0.1^⌊(e−1)/lr_decay_iters⌋;
    cosine: lr·(1 + cos(π·(e−1)/n_epochs))/2.
    """
    if config.lr_policy == "linear":
        return config.lr * (1.0 - max(0, epoch - config.n_epochs) / (config.n_epochs_decay + 1))
    if config.lr_policy == "step":
        return config.lr * 0.1 ** ((epoch - 1) // config.lr_decay_iters)
    if config.lr_policy == "cosine":
        return config.lr * (1 + math.cos(math.pi * (epoch - 1) / config.n_epochs)) / 2
    raise ValueError(f"--lr_policy must be linear, step or cosine; got {config.lr_policy!r}")
