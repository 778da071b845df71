"""The --model registry (methods/__init__.py): the flags' choices are read from the
registries, and reading them does not need TensorFlow at import time."""
import subprocess
import sys

import tensorflow as tf
from absl import flags

from tests.testdata import tiny_config
from tfattncut import config as config_lib
from tfattncut.methods import METHODS, build_method
from tfattncut.selection import SELECTORS


class RegistryTest(tf.test.TestCase):

    def test_flag_choices_are_the_registries(self):
        flag_values = flags.FlagValues()
        config_lib.define_flags(flag_values)
        self.assertEqual(flag_values["model"].parser.enum_values, list(METHODS))
        self.assertEqual(flag_values["selector"].parser.enum_values, list(SELECTORS))

    def test_config_imports_without_tensorflow(self):
        code = "import sys, tfattncut.config; print('tensorflow' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True)
        self.assertEqual(result.stdout.strip(), "False")

    def test_unknown_model_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "--model must be one of cut, cyclegan"):
            build_method(tiny_config("/unused", model="pix2pix"))
