"""The server's logging: every line with its time, level and component, as text for a terminal or JSON for a
container's log collector (``--log-format json``, what Kubernetes' and Loki's pipelines parse).

    2026-12-07T11:49:56.123Z WARNING tritonkit.watchdog: lstm_tokenizer: stub died; reloading it (recovery 1 in 600 s)
    {"time": "2026-12-07T11:49:56.123Z", "level": "WARNING", "component": "tritonkit.watchdog", "message": "..."}

The components are ``tritonkit.launcher``, ``tritonkit.supervisor``, ``tritonkit.watchdog`` and ``tritonkit.front``.
tritonserver's own lines go to the same stream untouched (its format is Triton's: ``I1207 11:49:56.123 ...``), so
a reader tells ours by the component and Triton's by their first letter.
"""

from __future__ import annotations

import json
import logging
import sys
import time

FORMATS = ("text", "json")
FORMAT_ENV = "LOG_FORMAT"


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
