"""The server's logging: every line with its time, level and component, as text for a terminal or JSON for a
container's log collector (``--log-format json``, what Kubernetes' and Loki's pipelines parse).

    2026-12-07T11:49:56.123Z WARNING tritonkit.watchdog: lstm_tokenizer: stub died; reloading it (recovery 1 in 600 s)
    {"time": "2026-12-07T11:49:56.123Z", "level": "WARNING", "component": "tritonkit.watchdog", "message": "..."}

The components are ``tritonkit.launcher``, ``tritonkit.supervisor``, ``tritonkit.watchdog`` and ``tritonkit.front``.
As text, tritonserver's own lines go to the same stream untouched (Triton's format, ``I1207 11:49:56.123456 ...``:
a reader tells them by their first letter). As JSON every line must parse, so the supervisor relays tritonserver's
output (and its stubs') line by line as objects of component ``tritonserver``, the level read from Triton's first
letter (``relay``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import BinaryIO

FORMATS = ("text", "json")
FORMAT_ENV = "LOG_FORMAT"
TRITON_LEVELS = {"I": "INFO", "W": "WARNING", "E": "ERROR", "F": "CRITICAL"}  # glog's first letter


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str):
        super().__init__()
        self.fmt = fmt

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        when = self.formatTime(record)
        if self.fmt == "json":
            return json.dumps({"time": when, "level": record.levelname, "component": record.name,
                               "message": message})
        return f"{when} {record.levelname} {record.name}: {message}"


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    """Sends the ``tritonkit`` loggers to stderr in ``fmt`` (``text`` or ``json``); again replaces the handler."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    root = logging.getLogger("tritonkit")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def current_format() -> str:
    """The format this process was told to log in (``LOG_FORMAT``, which the launcher sets for its children)."""
    found = os.environ.get(FORMAT_ENV) or "text"
    return found if found in FORMATS else "text"


def triton_line(line: bytes) -> bytes:
    """One line of tritonserver's output as a JSON object (component ``tritonserver``), newline included."""
    text = line.decode("utf-8", "replace").rstrip("\n")
    level = TRITON_LEVELS.get(text[:1], "INFO") if text[1:5].isdigit() else "INFO"  # a stub's print: no glog prefix
    now = time.time()
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return (json.dumps({"time": when, "level": level, "component": "tritonserver", "message": text}) + "\n").encode()


def relay(source: BinaryIO, destination: BinaryIO) -> threading.Thread:
    """Copies ``source`` (tritonserver's output pipe) to ``destination`` line by line as JSON until it closes."""

    def copy() -> None:
        with source:
            for line in source:
                destination.write(triton_line(line))
                destination.flush()

    thread = threading.Thread(target=copy, name="tritonkit-log-relay", daemon=True)
    thread.start()
    return thread
