"""Progress lines for long export steps: what runs, how far it is, and about how long is left.

``step("...")`` brackets a step of unknown length (a conversion, a parity run): a line when it starts, one with
its time when it ends (only if it took longer than ``QUIET_S``). ``Progress`` counts a loop (training epochs,
calibration feeds) and prints where it is with the time left, estimated from the pace so far, at most every
``EVERY_S`` seconds and always at the end.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

EVERY_S = 10.0  # a line at least this far apart: readable in CI logs, alive to someone watching
QUIET_S = 2.0  # steps shorter than this get no "done" line


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stdout, flush=True)


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    """Announces a step and, when it took a while, how long it took."""
    start = time.perf_counter()
    _say(f"{label}...")
    yield
    took = time.perf_counter() - start
    if took >= QUIET_S:
        _say(f"{label}: done in {duration(took)}")


class Progress:
    """Counts ``total`` units of ``unit`` (``epochs``, ``batches``) under ``label``.

    Example::

        progress = Progress("LSTM training", EPOCHS, "epochs")
        for epoch in range(EPOCHS):
            ...
            progress.advance(note=f"validation accuracy {accuracy:.3f}")
    """

    def __init__(self, label: str, total: int, unit: str, *, every_s: float = EVERY_S):
        if total < 1:
            raise ValueError(f"{label}: total={total} must be >= 1")
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.done = 0
        self.start = time.perf_counter()
        self.last_said = self.start
        _say(f"{label}: {total} {unit}...")

    def advance(self, count: int = 1, *, note: str = "") -> None:
        """Counts ``count`` more units done; prints a line when due (or at the end)."""
        self.done = min(self.total, self.done + count)
        now = time.perf_counter()
        if self.done < self.total and now - self.last_said < self.every_s and not note:
            return
        self.last_said = now
        _say(self.line(now) + (f"; {note}" if note else ""))

    def finish(self, *, note: str = "") -> None:
        """Ends early (early stopping): the line says so."""
        if self.done < self.total:
            _say(f"{self.label}: stopped after {self.done} of {self.total} {self.unit}, "
                 f"{duration(time.perf_counter() - self.start)}" + (f"; {note}" if note else ""))

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self.start
        if self.done >= self.total:
            return f"{self.label}: {self.total}/{self.total} {self.unit} in {duration(elapsed)}"
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta = f"about {duration(left)} left" if self.done else "estimating time left"
        return f"{self.label}: {self.done}/{self.total} {self.unit}, {duration(elapsed)} so far, {eta}"
