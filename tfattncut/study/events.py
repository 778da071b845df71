"""What a run's TensorBoard event files say about its training: how long it took, its
median step time and the series of scalars a method logs.

Read with TensorBoard's own loader, which stops at a record cut short (a process killed
mid-write) and turns every scalar into its tensor form whatever wrote it. Each training
process writes its own event file, so a resumed run has one file per sitting.
"""
import glob
import os

import numpy as np
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util

_SCALARS = "scalars"


class RunEvents:
    """The event files of one run's log folder, read once (a run's score asks several
    questions of them)."""

    def __init__(self, logdir):
        # [[event, ...] of each event file of the run, oldest first]
        self._files = [list(EventFileLoader(path).Load()) for path in
                       sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))]

    def scalars(self):
        """(tag, step, wall_time, value) of every scalar in the run's event files."""
        for events in self._files:
            for event in events:
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name == _SCALARS:
                        yield (value.tag, event.step, event.wall_time,
                               float(tensor_util.make_ndarray(value.tensor)))

    def training_minutes(self):
        """The minutes the run's event files span, summed over the files: every sitting a
        run was trained in, without the gaps between them."""
        spans = [max(e.wall_time for e in events) - min(e.wall_time for e in events)
                 for events in self._files if events]
        return sum(spans) / 60

    def median_step_time(self):
        """The median seconds per step between consecutive loss summaries (compilation,
        resume gaps and evaluation pauses are outliers the median ignores); None if under
        two."""
        times = {}
        for tag, step, wall_time, _ in self.scalars():
            if tag.startswith("loss/"):
                times.setdefault(step, wall_time)
        steps = sorted(times)
        rates = [(times[b] - times[a]) / (b - a) for a, b in zip(steps, steps[1:])
                 if times[b] > times[a]]
        return float(np.median(rates)) if rates else None

    def scalar_series(self, prefix):
        """{tag without prefix: [[step, value], ...]} of the scalars whose tag starts with
        prefix."""
        series = {}
        for tag, step, _, value in self.scalars():
            if tag.startswith(prefix):
                series.setdefault(tag[len(prefix):], {})[step] = value
        return {tag: sorted([step, value] for step, value in points.items())
                for tag, points in sorted(series.items())}
