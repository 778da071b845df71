"""cli.run: errors our code raises for the user are one line; library errors keep their
traceback."""
import json
import sys
from unittest import mock

import tensorflow as tf

from tfattncut import cli
from tfattncut.data import image_files


def missing_folder(argv):
    del argv
    image_files.list_images("/no/such/folder")


def library_bug(argv):
    del argv
    json.loads("{")


class RunTest(tf.test.TestCase):

    def run_main(self, main):
        with mock.patch.object(sys, "argv", ["prog"]):
            cli.run(main)

    def test_our_error_is_one_line_naming_the_folder(self):
        with self.assertRaises(SystemExit) as caught:
            self.run_main(missing_folder)
        message = caught.exception.code
        self.assertRegex(message, "^.*: error: Image folder /no/such/folder does not exist")
        self.assertNotIn("\n", message)

    def test_errors_raised_inside_libraries_keep_their_traceback(self):
        with self.assertRaises(json.JSONDecodeError) as caught:
            self.run_main(library_bug)
        self.assertFalse(cli.raised_by_us(caught.exception))

    def test_success_exits_cleanly(self):
        with self.assertRaises(SystemExit) as caught:
            self.run_main(lambda argv: None)
        self.assertIsNone(caught.exception.code)
