"""TF Serving's layout of a model on disk: BASE/N/ holds version N of the model (a
SavedModel), N an int64 (ModelSpec.version) written in ASCII digits. The one reader of that
layout for the server (`versions`), the export (the next version number) and bulk jobs (the
newest version).

Below `versions`, not in it: `export` needs the listing, and `versions` imports the
servable, which imports `export` (warm-up requests).
"""
import re

import tensorflow as tf

MAX_VERSION = 2 ** 63 - 1  # ModelSpec.version is an int64
_VERSION_NAME = re.compile(r"^[0-9]+$")  # ASCII digits: str.isdigit() takes "²" too


def list_versions(base_path, on_passed_over=None):
    """The integer versions of the folders in `base_path`, ascending; [] when it is not a
    folder. A folder named by a number over MAX_VERSION is passed over, and
    `on_passed_over(name)` called with its name; other names are not versions."""
    if not tf.io.gfile.isdir(base_path):
        return []
    versions = []
    for entry in tf.io.gfile.listdir(base_path):
        name = entry.strip("/")
        if not _VERSION_NAME.match(name):
            continue
        if int(name) > MAX_VERSION:
            if on_passed_over:
                on_passed_over(name)
            continue
        versions.append(int(name))
    return sorted(versions)
