"""The TensorBoard profiler over a window of training steps, and its top ops as a table.

`StepProfiler` traces steps A..B of a run (`--profile_steps=A,B`) into the run's logs/, where
TensorBoard's Profile tab shows them; `top_ops` reads the newest such profile back without
TensorBoard, through TensorFlow's own converter of profiles (`xspace_to_tools_data`, the one
TensorBoard's profile plugin calls; a private module of TF 2.21, no extra package).
"""
import glob
import json
import os

from absl import logging
import tensorflow as tf
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin


def check_window(steps, total_steps, start_step=0):
    """Refuses a --profile_steps window that starts after the run's last step (the run would
    end without a profile, and without saying so); warns when it is cut short by the last
    step or was passed before a resume (`start_step`: the steps already done)."""
    if not steps:
        return
    first, last = steps
    if first > total_steps:
        raise ValueError(f"--profile_steps={first},{last} starts after the run's last step "
                         f"({total_steps}), so nothing would be profiled: choose steps in "
                         f"1..{total_steps}")
    if last > total_steps:
        logging.warning("--profile_steps=%d,%d ends after the run's last step: profiling "
                        "steps %d..%d", first, last, first, total_steps)
    if start_step >= last:
        logging.warning("--profile_steps=%d,%d: the run resumes at step %d, past that "
                        "window; nothing is profiled", first, last, start_step + 1)


class StepProfiler:
    """Profiles steps first..last (1-based, inclusive) into `logdir`; `steps=()` profiles none.

    A resumed run that starts inside the window profiles the rest of it. Used as a context
    manager, so that a run stopping early (SIGTERM, an error) still writes its profile.
    """

    def __init__(self, logdir, steps):
        self.logdir = logdir
        self.first, self.last = steps or (None, None)
        self.active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def before_step(self, step):
        """Call before step `step` (1-based) runs."""
        if self.first is not None and not self.active and self.first <= step <= self.last:
            tf.profiler.experimental.start(self.logdir)
            self.active = True

    def after_step(self, step):
        """Call after step `step` (1-based) finished."""
        if self.active and step >= self.last:
            self.stop()

    def stop(self):
        if self.active:
            tf.profiler.experimental.stop()
            self.active = False


def profile_files(logdir):
    """The *.xplane.pb files (one per host) of the newest profile under logdir."""
    runs = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "")))
    files = sorted(glob.glob(os.path.join(runs[-1], "*.xplane.pb"))) if runs else []
    if not files:
        raise FileNotFoundError(
            f"no profile (plugins/profile/*/*.xplane.pb) under {logdir}; train with "
            "--profile_steps=A,B first and pass that run's logs folder")
    return files


def top_ops(logdir, count=20):
    """The `count` TensorFlow ops with the most self time in the newest profile under logdir,
    most first: dicts with where ("Host" or "Device"), type, name, occurrences, self_time_us
    and self_time_percent (of that host's or device's busy time)."""
    files = profile_files(logdir)
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(files, "framework_op_stats", {})
    if not ok:
        # The file's fault, not ours: a profile that a killed run left half-written, or one
        # damaged in a copy.
        raise ValueError(f"{', '.join(files)}: TensorFlow cannot read this profile "
                         f"({data.decode()}); profile again with launch.train "
                         "--profile_steps=A,B")
    # Two DataTables: with idle time as a row, then without it (the one we want).
    table = json.loads(data)[-1]
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, (cell["v"] if cell else None for cell in row["c"])))
            for row in table["rows"]]
    if not rows:  # an empty (0-byte) file reads as a profile of nothing
        raise ValueError(f"{', '.join(files)}: the profile holds no TensorFlow ops; profile "
                         "again with launch.train --profile_steps=A,B")
    rows.sort(key=lambda r: -r["total_self_time"])
    return [{
        "where": r["host_or_device"], "type": r["type"], "name": r["operation"],
        "occurrences": int(r["occurrences"]), "self_time_us": r["total_self_time"],
        "self_time_percent": 100.0 * r[f"{r['host_or_device'].lower()}_total_self_time_percent"],
    } for r in rows[:count]]


def format_top_ops(ops):
    """Markdown table of top_ops."""
    lines = ["| where | type | op | count | self time (ms) | % |", "|---|---|---|---|---|---|"]
    lines += [f"| {o['where']} | {o['type']} | {o['name']} | {o['occurrences']} | "
              f"{o['self_time_us'] / 1000:.3f} | {o['self_time_percent']:.1f} |" for o in ops]
    return "\n".join(lines)
