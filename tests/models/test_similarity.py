"""SimDCL's mapping network against a NumPy forward pass."""
import numpy as np
import tensorflow as tf

from tfattncut.models.similarity import SimilarityMapper


def numpy_conv_valid(x, kernel, bias, stride):
    """[B, H, W, C] (*) [k, k, C, O] with stride, no padding."""
    k = kernel.shape[0]
    rows = range(0, x.shape[1] - k + 1, stride)
    cols = range(0, x.shape[2] - k + 1, stride)
    out = np.empty([x.shape[0], len(rows), len(cols), kernel.shape[-1]])
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, i, j] = np.einsum("bhwc,hwco->bo", x[:, r:r + k, c:c + k], kernel) + bias
    return out


class SimilarityMapperTest(tf.test.TestCase):

    def test_parameter_count(self):
        # conv3×3 4→64 (2,368) + Dense 64→64 (4,160) twice: the reference's MappingF.
        self.assertEqual(SimilarityMapper(num_layers=4).count_params(), 10_688)

    def test_matches_numpy(self):
        mapper = SimilarityMapper(num_layers=3, dim=8, init_type="normal", init_gain=0.5)
        patches = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype(np.float32)
        kernel, bias = mapper.conv.get_weights()
        w1, b1 = mapper.hidden.get_weights()
        w2, b2 = mapper.out.get_weights()
        x = np.maximum(numpy_conv_valid(patches, kernel, bias, 2), 0).mean(axis=(1, 2))
        v = np.maximum(x @ w1 + b1, 0) @ w2 + b2
        expected = v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-7)
        # float32 conv and matmuls against NumPy's order; unit vectors: 1e-4.
        self.assertAllClose(mapper(patches), expected, rtol=1e-4, atol=1e-4)
        self.assertEqual(expected.shape, (2, 8))
