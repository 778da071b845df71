"""The main of every py_test in BUILD (build_defs.bzl): runs pytest on the test file named by
its argument, so that under Bazel, as under `pytest`, conftest.py's settings (two logical
CPUs, XLA's flags) and the marks apply. A test file run as a script would only define its
classes, and its target would pass without running a test."""
import sys

import pytest

if __name__ == "__main__":
    # No cache folder: Bazel's runfiles are read-only.
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
