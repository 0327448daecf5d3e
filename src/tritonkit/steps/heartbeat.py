"""Busy marks for the watchdog: each stub records when its current ``execute`` began, so a hung one shows its age.

A stub that died or was stopped shows in /proc; one stuck inside ``execute`` (a deadlock, an endless loop, a read
that never returns) looks alive. So every step (``steps.BatchStep``) and the embedded ONNX Runtime backend wrap
``execute`` in ``Heartbeat.busy()``: it writes the start time (``time.monotonic()``, one clock for every process on
the machine) into ``$TRITONKIT_HEARTBEAT_DIR/<pid>`` and zero when the call returns: two 8-byte ``pwrite`` calls
per batch. The watchdog reads those files and reloads a model whose stub has been busy longer than its bound.

Without ``TRITONKIT_HEARTBEAT_DIR`` (the NGC container, ``--no-watchdog``) nothing is written.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

DIR_ENV = "TRITONKIT_HEARTBEAT_DIR"
_STAMP = struct.Struct("d")
_IDLE = _STAMP.pack(0.0)


class Heartbeat:
    """This process's busy mark; a no-op when the watchdog did not ask for one."""

    def __init__(self, directory: str | None = None):
        directory = directory if directory is not None else os.environ.get(DIR_ENV)
        self._fd = None
        if directory:
            self._fd = os.open(Path(directory) / str(os.getpid()), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.pwrite(self._fd, _IDLE, 0)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Marks this process busy for the duration of the block."""
        if self._fd is None:
            yield
            return
        os.pwrite(self._fd, _STAMP.pack(time.monotonic()), 0)
        try:
            yield
        finally:
            os.pwrite(self._fd, _IDLE, 0)


def busy_for(directory: Path, pid: int, now: float | None = None) -> float:
    """Seconds process ``pid`` has been inside its current ``execute``; 0 when idle or unknown."""
    try:
        started = _STAMP.unpack(Path(directory, str(pid)).read_bytes()[: _STAMP.size])[0]
    except (OSError, struct.error):
        return 0.0
    return 0.0 if started <= 0 else (time.monotonic() if now is None else now) - started
