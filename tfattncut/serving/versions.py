"""Which version of a model is served: the integer version folders under a base path are
polled, the newest loadable one is loaded (with its warm-up requests) and swapped in, and
the states that GetModelStatus reports are kept, a failed load's error included.

As tensorflow_model_server: a version that fails to load is retried (MAX_LOAD_ATTEMPTS in
all), and meanwhile the newest older version that loads is served, so a broken new version
never leaves a model without one. Unlike it, a version that used up its attempts is tried
again as soon as its folder changes (a fixed re-export), without a restart. Whatever goes
wrong with one version folder (a dangling link in it, a file that vanishes mid-load) fails
that version alone, with the reason in its status and the log; folder names that are not an
int64 version (ModelSpec.version) are passed over with a warning.
"""
import dataclasses
import os
import threading

import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import get_model_status_pb2

from tfattncut.serving import memory
from tfattncut.serving.admission import MemoryBudget
from tfattncut.serving.servable import Servable
from tfattncut.serving.validation import RequestLimits, not_found, quoted
from tfattncut.serving.version_folders import MAX_VERSION, list_versions

# As tensorflow_model_server's --max_num_load_retries (default 5) plus the first try.
MAX_LOAD_ATTEMPTS = 6
STATE = get_model_status_pb2.ModelVersionStatus.State
OK, UNKNOWN = 0, 2  # tensorflow.error.Code


@dataclasses.dataclass
class VersionStatus:
    """What GetModelStatus says of one version: state, error code and message."""
    state: int
    error_code: int = OK
    error_message: str = ""


@dataclasses.dataclass
class _Failure:
    attempts: int
    fingerprint: tuple  # of the version folder when it last failed


def _fingerprint(path):
    """(relative path, size, mtime) of every file in a version folder, and the folder's own
    inode: any rewrite or replacement of the folder changes it. A link that leads nowhere
    (dangling, or a loop) counts with its own size and mtime."""
    entries = [os.stat(path).st_ino]
    for folder, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            file = os.path.join(folder, name)
            try:
                stat = os.stat(file)
            except OSError:
                stat = os.lstat(file)
            entries.append((os.path.relpath(file, path), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class ModelSource:
    """One model name: polls its base path for integer version folders, serves the newest
    that loads."""

    def __init__(self, name, base_path, batching=None, limits=RequestLimits(), budget=None):
        self.name, self.base_path, self.batching, self.limits = \
            name, base_path, batching, limits
        self.budget = budget or MemoryBudget(memory.default_budget_bytes())
        self._lock = threading.Lock()
        self._current = None
        self._status = {}  # version -> VersionStatus
        self._failures = {}  # version -> _Failure
        self._passed_over = set()  # folder names warned about once

    def available_versions(self):
        """Integer versions on disk holding a saved_model.pb, ascending."""
        return [version for version in list_versions(self.base_path, self._pass_over)
                if tf.io.gfile.exists(os.path.join(self._path(version), "saved_model.pb"))]

    def _pass_over(self, name):
        """Warns, once per folder, of a version folder whose number is not an int64."""
        if name not in self._passed_over:
            self._passed_over.add(name)
            logging.warning("Model %s: version folder %s is passed over: versions are int64, "
                            "at most %d", self.name, os.path.join(self.base_path, name),
                            MAX_VERSION)

    def poll(self):
        """Loads the newest version newer than the served one; when it fails, the next
        newest, and so on, so that the newest loadable version is served at once. Never
        raises: an error with the model folder itself is logged, and tried again at the next
        poll."""
        current = self._current
        try:
            versions = self.available_versions()
        except Exception:  # an unreadable base path, say; the served version stays
            logging.exception("Model %s: cannot list the versions in %s", self.name,
                              self.base_path)
            return
        for version in reversed(versions):
            if current is not None and version <= current.version:
                return
            if self._may_try(version) and self._load(version):
                return

    def _may_try(self, version):
        failure = self._failures.get(version)
        if failure is None or failure.attempts < MAX_LOAD_ATTEMPTS:
            return True
        try:
            fingerprint = _fingerprint(self._path(version))
        except OSError:  # the folder is going away: nothing to retry
            return False
        if fingerprint == failure.fingerprint:
            return False
        logging.info("Model %s version %d changed on disk since it failed to load; retrying",
                     self.name, version)
        del self._failures[version]
        return True

    def _path(self, version):
        return os.path.join(self.base_path, str(version))

    def _load(self, version):
        """Loads and warms up a version and swaps it in; False (status END with the error)
        when that fails."""
        self._status[version] = VersionStatus(STATE.LOADING)
        fingerprint = servable = None
        try:
            fingerprint = _fingerprint(self._path(version))
            servable = Servable(self.name, version, self._path(version), self.batching,
                                self.limits, self.budget)
            warmed = servable.warm_up()
        except Exception as error:  # keep serving the old version; try the new one again
            if servable is not None:
                servable.close()
            failure = self._failures.setdefault(version, _Failure(0, None))
            failure.attempts += 1
            failure.fingerprint = fingerprint
            code = error.error_code if isinstance(error, tf.errors.OpError) else UNKNOWN
            retry = ("retried at the next poll" if failure.attempts < MAX_LOAD_ATTEMPTS
                     else "retried when its folder changes")
            message = (f"version {version} failed to load from {self._path(version)} (attempt "
                       f"{failure.attempts} of {MAX_LOAD_ATTEMPTS}, {retry}): "
                       f"{type(error).__name__}: {error}")
            logging.error("Model %s: %s", self.name, message)
            self._status[version] = VersionStatus(STATE.END, code, message)
            return False
        self._failures.pop(version, None)
        with self._lock:
            old, self._current = self._current, servable
            self._status[version] = VersionStatus(STATE.AVAILABLE)
            if old is not None:
                self._status[old.version] = VersionStatus(STATE.END)
        if old is not None:
            old.close()
        logging.info("Serving model %s version %d (%d warm-up requests replayed)",
                     self.name, version, warmed)
        return True

    def get(self, version=None):
        """The served Servable; `version` must be the served one if given."""
        with self._lock:
            current = self._current
        if current is None:
            raise not_found(f"model {quoted(self.name)} has no loaded version yet (looking "
                            f"for integer version folders with a SavedModel in "
                            f"{self.base_path})")
        if version is not None and version != current.version:
            raise not_found(f"model {quoted(self.name)} has no version {version}; serving "
                            f"version {current.version}")
        return current

    def status(self, version=None):
        """[(version, VersionStatus)] of the versions this source has seen."""
        if version is not None:
            if version not in self._status:
                raise not_found(f"model {quoted(self.name)} has no version {version}; known "
                                f"versions {sorted(self._status)}")
            return [(version, self._status[version])]
        return sorted(self._status.items())

    def close(self):
        if self._current is not None:
            self._current.close()
