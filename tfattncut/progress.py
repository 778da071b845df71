"""Progress of a long loop as a person reads it: a bar on a terminal, plain lines in a log.

Keras' Progbar redraws itself with backspaces and ANSI codes even when stdout is a file, so a
redirected run's log fills with control characters, and per-epoch bars only estimate the
epoch. `Progress` counts the whole loop (every epoch of a run, every image of a set): on a
terminal it redraws one bar in place; anywhere else it prints one plain line every `every`
units, as Orbit and the reference's visualizer do:

    step 150/400: 2.41 steps/s, ETA 0:01:44, G_GAN 0.2511, NCE 4.013, D 0.4907

Rates and ETAs leave out the first update, which in training includes tracing the step.
"""
import math
import sys
import time

_BAR_WIDTH = 24
_REDRAW_SECONDS = 0.1  # a terminal bar redraws at most this often (and at the end)


def format_duration(seconds):
    """Seconds -> H:MM:SS."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """Counts `total` units of a loop that may resume at `start`.

    total: the loop's last unit count, or None when unknown (no ETA then).
    unit: what is counted ("step", "image"), singular.
    every: log lines are printed each time the count crosses a multiple of `every`, and at
      `total`; values are averaged over the units since the last multiple (on a terminal
      too, where the bar shows them).
    stream: where to write (default: sys.stdout when the object is made); a terminal gets the
      bar, anything else gets plain lines.
    clock: seconds, monotonic (a parameter for tests).
    """

    def __init__(self, total, unit="step", every=50, stream=None, start=0,
                 clock=time.monotonic):
        if every < 1:
            raise ValueError(f"Progress lines every {every} {unit}s: must be at least 1")
        self.total, self.unit, self.every = total, unit, every
        self.stream = sys.stdout if stream is None else stream
        self.terminal = _is_terminal(self.stream)
        self.current = start
        self._clock = clock
        self._first = None  # (count, time) at the first update: the rate's origin
        self._sums, self._counts = {}, {}  # of the values since the last line
        self._drawn_width = 0
        self._last_draw = -math.inf

    def note(self, message):
        """Prints a line of its own (e.g. the epoch and its learning rate) above the bar."""
        self._clear_bar()
        self.stream.write(message + "\n")
        self.stream.flush()
        if self.current != self.total:
            self._draw(force=True)

    def add(self, count=1, values=()):
        self.update(self.current + count, values)

    def update(self, current, values=()):
        """The loop reached `current` units; `values` (name -> float, or pairs) are shown as
        their mean over the units since the last multiple of `every`."""
        previous, self.current = self.current, current
        for name, value in dict(values).items():
            self._sums[name] = self._sums.get(name, 0.0) + value
            self._counts[name] = self._counts.get(name, 0) + 1
        if self._first is None:
            self._first = (current, self._clock())
        crossed = current // self.every > previous // self.every or current == self.total
        if self.terminal:
            self._draw(force=crossed)
        elif crossed:
            self.stream.write(self._status() + "\n")
            self.stream.flush()
        if crossed:
            self._sums, self._counts = {}, {}

    def rate(self):
        """Units per second since the first update; None until a later one."""
        if self._first is None:
            return None
        count, then = self._first
        elapsed = self._clock() - then
        return (self.current - count) / elapsed if self.current > count and elapsed > 0 else None

    def _status(self):
        total = "" if self.total is None else f"/{self.total}"
        parts = [f"{self.unit} {self.current}{total}"]
        rate = self.rate()
        if rate is not None:
            parts.append(f"{rate:.3g} {self.unit}s/s")
            if self.total is not None:
                parts.append(f"ETA {format_duration((self.total - self.current) / rate)}")
        parts += [f"{name} {self._sums[name] / self._counts[name]:.4g}" for name in self._sums]
        return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")

    def _draw(self, force=False):
        """Redraws the terminal bar in place; the final one ends its line."""
        if not self.terminal or self._first is None:
            return
        now = self._clock()
        if not force and now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        bar = ""
        if self.total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * self.current // self.total)
            bar = "[" + "=" * filled + " " * (_BAR_WIDTH - filled) + "] "
        text = bar + self._status()
        self.stream.write("\r" + text + " " * max(0, self._drawn_width - len(text)))
        self._drawn_width = len(text)
        if self.current == self.total:
            self.stream.write("\n")
            self._drawn_width = 0
        self.stream.flush()

    def _clear_bar(self):
        if self.terminal and self._drawn_width:
            self.stream.write("\r" + " " * self._drawn_width + "\r")
            self._drawn_width = 0
