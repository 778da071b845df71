"""Process-wide TensorFlow settings."""
import tensorflow as tf

from tfattncut import process_settings


class ProcessSettingsTest(tf.test.TestCase):

    def test_tf32_is_switched_both_ways(self):
        try:
            process_settings.allow_tf32(True)
            self.assertTrue(tf.config.experimental.tensor_float_32_execution_enabled())
            process_settings.allow_tf32(False)
            self.assertFalse(tf.config.experimental.tensor_float_32_execution_enabled())
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(False)
