"""The describe report: parameter counts and NCE feature shapes."""
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.describe import describe


class DescribeTest(tf.test.TestCase):

    def test_describe_reports_counts_and_shapes(self):
        report = describe(tiny_config("/unused", selector="bam", ngf=16))
        self.assertEqual(report["nce_features"]["16"], [16, 16, 64])
        self.assertEqual(report["nce_features"]["0"], [70, 70, 3])
        parameters = report["parameters"]
        self.assertEqual(parameters["total"], parameters["generator"]
                         + parameters["discriminator"] + parameters["projector"])
        self.assertLen(parameters["selectors_in_projector"], 2)
