"""Installs tfattncut: `pip install -e .[test]`."""
from setuptools import find_packages, setup

setup(
    name="tfattncut",
    version="0.1.0",
    description=(
        "Unpaired image-to-image translation with attention-guided contrastive "
        "learning (CUT, FastCUT, QS-Attn, attention-based CUT) in TensorFlow 2 / Keras 3."
    ),
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["tfattncut", "tfattncut.*", "launch", "launch.*"]),
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorflow-serving-api==2.21.0",
        "tensorboard==2.21.0",
        "absl-py==2.5.1",
        "numpy>=1.26,<3",
        # Drawing the bundled synthetic street scenes (polygons, ellipses); < 13 for Beam.
        "pillow==12.3.0",
        # launch.bulk_translate's pipeline (it needs protobuf < 7 and pillow < 13).
        "apache-beam==2.77.0",
        # The method study's statistics: t intervals, paired t-tests, Friedman's test, the F
        # and noncentral t distributions (tfattncut/study/statistics.py).
        "scipy==1.17.1",
    ],
    extras_require={
        "test": [
            "pytest==9.0.3",
            # Two test processes (`-n 2`): the tests are mostly single-threaded tracing and XLA
            # compiling, so a second process on a 2-core machine runs the suite 1.4x faster.
            "pytest-xdist==3.8.0",
            # tests/test_build.py runs BUILD and build_defs.bzl as Starlark (the Rust
            # implementation), so they stay valid Bazel input without Bazel, which cannot run
            # offline here.
            "starlark-pyo3==2026.1.3",
            # Only to check our metrics against TF-GAN's own code: its eval modules are loaded
            # as files (`import tensorflow_gan` fails on TF >= 2.16) and need these two.
            "tensorflow-gan==2.1.0",
            "tensorflow-probability==0.25.0",
            "tf-keras==2.21.0",
        ],
    },
)
