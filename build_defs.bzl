"""The macros of tfattncut's BUILD: one py_binary per entry point and one py_test per test
file, made from the files a glob() finds, so that a new module, entry point or test file
needs no BUILD edit. tests/test_build.py evaluates this file with BUILD and checks the
targets that result against the tree and its imports."""

load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")

# The end-to-end tests: each module sets `pytestmark = pytest.mark.slow`. They are tagged
# "slow", so that `bazel test --test_tag_filters=-slow //...` leaves out what
# `pytest -m "not slow"` does, and sized large (Bazel's 15-minute timeout).
SLOW_TESTS = [
    "tests/evaluation/test_downstream.py",
    "tests/launch/test_benchmark.py",
    "tests/launch/test_bulk_translate.py",
    "tests/launch/test_compare.py",
    "tests/launch/test_downstream.py",
    "tests/launch/test_evaluate.py",
    "tests/launch/test_export.py",
    "tests/launch/test_import_torch.py",
    "tests/launch/test_infer.py",
    "tests/launch/test_serve.py",
    "tests/launch/test_train.py",
    "tests/launch/test_translate.py",
    "tests/selection/test_registry.py",
    "tests/serving/test_benchmark.py",
    "tests/serving/test_client.py",
    "tests/serving/test_rest_load.py",
    "tests/serving/test_server.py",
    "tests/study/test_runner.py",
    "tests/training/test_multi_worker.py",
    "tests/training/test_profiling.py",
    "tests/training/test_trainer.py",
]

# Not end-to-end, but longer than a medium test's 5 minutes on a 2-core CPU: it compiles CUT,
# QS-Attn and CycleGAN steps with XLA under MirroredStrategy.
LONG_TESTS = ["tests/training/test_strategy.py"]

# The main of every py_test: pytest on the test file (conftest.py's settings and the marks
# apply, as under `pytest`).
PYTEST_MAIN = "tests/bazel_main.py"

def target_name(path):
    """A file's target: its path with "/" -> "_" and no ".py" (launch/train.py -> launch_train,
    tests/selection/test_qsattn.py -> tests_selection_test_qsattn)."""
    return path[:-len(".py")].replace("/", "_")

def entry_point_labels(srcs):
    """The labels of the py_binary targets py_entry_points makes of srcs."""
    return [":" + target_name(src) for src in srcs]

def py_entry_points(srcs, deps):
    """One py_binary per launch/NAME.py in srcs (`python -m launch.NAME`), all on deps and the
    launch package: an entry point only parses flags and calls the library, so they share one
    dependency list."""
    for src in srcs:
        py_binary(
            name = target_name(src),
            srcs = [src],
            main = src,
            deps = [":launch"] + deps,
        )

def py_test_folder(name, srcs, deps, data = []):
    """A folder of tests/: its modules as one testonly py_library `name` (test modules import
    each other's helpers, e.g. tests/methods/test_dcl.py imports tests/test_losses.py), and one
    py_test per test_*.py among srcs, which PYTEST_MAIN runs.

    srcs: every .py file of the folder (a glob); deps: the targets and requirement()s its
    modules import; data: files or binaries its tests read or run."""
    py_library(
        name = name,
        testonly = True,
        srcs = srcs,
        deps = deps,
        data = data,
    )
    for src in srcs:
        if src.rpartition("/")[2].startswith("test_"):
            py_test(
                name = target_name(src),
                size = "large" if src in SLOW_TESTS or src in LONG_TESTS else "medium",
                srcs = [src, PYTEST_MAIN],
                main = PYTEST_MAIN,
                args = [src],
                tags = ["slow"] if src in SLOW_TESTS else [],
                deps = [":" + name],
            )
