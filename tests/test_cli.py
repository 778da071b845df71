"""cli.run: errors our code raises for the user (UserError, or ValueError and OSError raised
in tfattncut/ or launch/) are one line; library errors keep their traceback; a flagfile that names one this folder cannot reach is named before absl parses."""
import contextlib
import json
import os
import re
import sys
import tempfile
from unittest import mock

import tensorflow as tf
from absl import app

from tfattncut import cli, errors
from tfattncut.data import image_files


def missing_folder(argv):
    del argv
    image_files.list_images("/no/such/folder")


def library_bug(argv):
    del argv
    json.loads("{")


def refuse_value(argv):
    del argv
    raise errors.InvalidValue("--lr must be > 0; got -1")


def refuse_usage(argv):
    del argv
    raise app.UsageError("give exactly one of --a or --b")


class RunTest(tf.test.TestCase):

    def run_main(self, main, *args):
        with mock.patch.object(sys, "argv", ["prog", *args]):
            cli.run(main)

    def test_our_error_is_one_line_naming_the_folder(self):
        with self.assertRaises(SystemExit) as caught:
            self.run_main(missing_folder)
        message = caught.exception.code
        self.assertRegex(message, "^.*: error: Image folder /no/such/folder does not exist")
        self.assertNotIn("\n", message)

    def test_a_user_error_is_one_line_wherever_it_is_raised(self):
        with self.assertRaises(SystemExit) as caught:
            self.run_main(refuse_value)  # raised in tests/, outside tfattncut/ and launch/
        self.assertRegex(caught.exception.code, r"^\S+: error: --lr must be > 0; got -1$")

    def test_errors_raised_inside_libraries_keep_their_traceback(self):
        with self.assertRaises(json.JSONDecodeError) as caught:
            self.run_main(library_bug)
        self.assertFalse(cli.raised_by_us(caught.exception))

    def test_words_that_are_not_flags_are_refused_before_main(self):
        main = mock.Mock()
        with self.assertRaises(SystemExit) as caught:
            self.run_main(main, "stray", "words")
        self.assertRegex(caught.exception.code, r"^\S+: error: unexpected arguments: stray "
                                                r"words \(--helpshort lists the flags\)$")
        main.assert_not_called()

    def test_a_flagfile_line_without_dashes_names_its_flagfile(self):
        inner = os.path.join(self.get_temp_dir(), "inner.cfg")
        with open(inner, "w") as f:
            f.write("ndf=8\n")
        outer = os.path.join(self.get_temp_dir(), "outer.cfg")
        with open(outer, "w") as f:
            f.write(f"--flagfile={inner}\n")
        main = mock.Mock()
        with self.assertRaises(SystemExit) as caught:
            self.run_main(main, f"--flagfile={outer}")
        self.assertRegex(caught.exception.code, r"^\S+: error: unexpected arguments: ndf=8 "
                                                f"\\(ndf=8 is a line of the flagfile {inner}, ")
        main.assert_not_called()

    def test_usage_error_is_one_line_without_the_help_text(self):
        with self.assertRaises(SystemExit) as caught:
            self.run_main(refuse_usage)
        self.assertRegex(caught.exception.code, r"^\S+: error: give exactly one of --a or --b "
                                                r"\(--helpshort lists the flags\)$")

    def test_success_exits_cleanly(self):
        with self.assertRaises(SystemExit) as caught:
            self.run_main(lambda argv: None)
        self.assertIsNone(caught.exception.code)


@contextlib.contextmanager
def current_folder(path):
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


class NestedFlagfileTest(tf.test.TestCase):
    """In ROOT: configs/preset.cfg names configs/base.cfg, as the bundled presets do."""

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp()
        self.elsewhere = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.root, "configs"))
        self.write("configs/base.cfg", "--lr=0.1\n")
        self.write("configs/preset.cfg", "# a preset\n  --flagfile=configs/base.cfg\n--lr=0.2\n")
        self.preset = os.path.join(self.root, "configs", "preset.cfg")

    def write(self, name, text):
        with open(os.path.join(self.root, name), "w") as f:
            f.write(text)

    def test_a_nested_flagfile_is_looked_up_from_the_current_folder(self):
        argv = ["prog", f"--flagfile={self.preset}"]
        with current_folder(self.root):
            self.assertIsNone(cli.unreachable_nested_flagfile(argv))
        with current_folder(self.elsewhere):
            self.assertEqual(cli.unreachable_nested_flagfile(argv),
                             (self.preset, "configs/base.cfg"))

    def test_flagfiles_two_levels_down_are_checked_and_a_loop_ends(self):
        self.write("configs/top.cfg", "--flagfile=configs/preset.cfg\n--flagfile=configs/top.cfg\n")
        self.write("configs/preset.cfg", "--flagfile=configs/missing.cfg\n")
        with current_folder(self.root):
            self.assertEqual(
                cli.unreachable_nested_flagfile(["prog", "--flagfile=configs/top.cfg"]),
                ("configs/preset.cfg", "configs/missing.cfg"))

    def test_a_missing_command_line_flagfile_is_left_to_absl(self):
        self.assertIsNone(cli.unreachable_nested_flagfile(
            ["prog", f"--flagfile={self.elsewhere}/none.cfg", "--lr=1"]))

    def test_run_names_the_including_flagfile_before_main_runs(self):
        with current_folder(self.elsewhere), \
                mock.patch.object(sys, "argv", ["prog", f"--flagfile={self.preset}"]), \
                self.assertRaises(SystemExit) as caught:
            cli.run(lambda argv: self.fail("main ran"))
        self.assertRegex(caught.exception.code,
                         f"^.*: error: {re.escape(self.preset)} names "
                         f"--flagfile=configs/base.cfg, which does not exist from this folder")
