"""Adam with PyTorch's epsilon (methods/adam.py)."""
import numpy as np
import tensorflow as tf

from tfattncut.methods.adam import TorchAdam


def numpy_adam(param, grads, lr, b1, b2, eps, torch_epsilon=True):
    """PyTorch's Adam (ε added to √v̂), or Keras' (ε added to √v) with torch_epsilon=False."""
    m = v = np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if torch_epsilon:
            param = param - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
        else:
            param = param - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return param


class TorchAdamTest(tf.test.TestCase):

    def test_matches_pytorch_formula(self):
        rng = np.random.default_rng(0)
        start = rng.normal(size=(5,))
        # Tiny gradients make the epsilon placement matter.
        grads = [rng.normal(size=(5,)) * 1e-7 for _ in range(4)]
        variable = tf.Variable(start.astype(np.float64))
        optimizer = TorchAdam(learning_rate=2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
        for g in grads:
            optimizer.apply([tf.constant(g)], [variable])
        expected = numpy_adam(start, grads, 2e-4, 0.5, 0.999, 1e-8)
        keras_style = numpy_adam(start, grads, 2e-4, 0.5, 0.999, 1e-8, torch_epsilon=False)
        moved = np.abs(expected - start)
        self.assertAllClose(variable.numpy() - start, expected - start, rtol=1e-4, atol=0)
        # The two epsilon placements differ by far more than the tolerance above.
        self.assertGreater(np.min(np.abs(expected - keras_style) / moved), 1e-2)
