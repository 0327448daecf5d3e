"""The health file: what the supervisor tells the front, in one place for both sides.

The supervisor (``supervisor/process.py``, one thread) is its only writer: ``HealthState`` holds the models down
now, whether the watchdog gave up, whether tritonserver itself is being restarted and the recoveries so far, and
``write`` replaces the file in one rename (a fresh temporary name each time: the front never reads half a file, and
two writers could not clobber each other's temporary). The front (``front/``) reads it with ``Health`` on each
health request and scrape: readiness answers 503 while a model is down, liveness fails once the watchdog gave up,
``/metrics`` carries the recovery counters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

MODEL_READY = re.compile(r"/v2/models/([^/]+)(?:/versions/[^/]+)?/ready")


@dataclasses.dataclass
class HealthState:
    """The supervisor's view of its server, written to ``path`` by ``write``.

    Attributes:
        down: models (and the ensembles that use them) that cannot answer now; ``tritonserver`` while it restarts.
        gave_up: the watchdog gave up on a crash loop: liveness fails so the orchestrator restarts the server.
        restarting: tritonserver itself is being restarted (down, but alive).
        server_restarts: tritonserver processes restarted so far.
        recoveries: (model, cause) -> reloads of that model after a stub of that cause.
    """

    path: Path
    down: set[str] = dataclasses.field(default_factory=set)
    gave_up: bool = False
    restarting: bool = False
    server_restarts: int = 0
    recoveries: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.write()

    def as_json(self) -> dict:
        return {"down": sorted(self.down), "gave_up": self.gave_up, "restarting": self.restarting,
                "server_restarts": self.server_restarts,
                "recoveries": [{"model": m, "cause": c, "count": n} for (m, c), n in sorted(self.recoveries.items())]}

    def write(self) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(self.as_json(), handle)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


class Health:
    """The front's side: the file read on each health request (a few hundred bytes; no file: all healthy)."""

    def __init__(self, path: Path | None):
        self.path = path

    def state(self) -> dict:
        if self.path is None:
            return {"down": [], "gave_up": False, "recoveries": []}
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"down": [], "gave_up": False, "recoveries": []}

    def down(self) -> list[str]:
        return self.state()["down"]

    def gave_up(self) -> bool:
        return self.state()["gave_up"]

    def live(self) -> bool | None:
        """Liveness under the watchdog: the launcher supervises tritonserver (restarts it when it dies or stops
        answering), so the server is live until the watchdog gives up. ``None`` without a watchdog: ask Triton."""
        return None if self.path is None else not self.gave_up()

    def refusal(self, path: str) -> str | None:
        """Why a health request must answer 503 now, or None to ask tritonserver."""
        state = self.state()
        down = state["down"]
        if path == "/v2/health/ready" and down:
            return f"recovering: {', '.join(down)} cannot answer now (a model's stub is being reloaded)"
        model = MODEL_READY.fullmatch(path)
        if model and model.group(1) in down:
            return f"{model.group(1)} is recovering: a model's stub is being reloaded"
        return None

    def metrics(self, tritonserver_up: bool | None = None) -> str:
        """Our metrics in Prometheus' text format; ``tritonserver_up``: whether Triton's own came with them."""
        lines = ["# HELP tritonkit_model_recoveries_total Python-backend models the watchdog reloaded, by cause.",
                 "# TYPE tritonkit_model_recoveries_total counter"]
        for entry in self.state()["recoveries"]:
            lines.append(f'tritonkit_model_recoveries_total{{model="{entry["model"]}",cause="{entry["cause"]}"}} '
                         f'{entry["count"]}')
        lines += ["# HELP tritonkit_tritonserver_restarts_total tritonserver processes the launcher restarted (one "
                  "died, or a reload failed).", "# TYPE tritonkit_tritonserver_restarts_total counter",
                  f"tritonkit_tritonserver_restarts_total {self.state().get('server_restarts', 0)}"]
        if tritonserver_up is not None:
            lines += ["# HELP tritonkit_tritonserver_up 1 when tritonserver answered this scrape (its nv_ metrics are "
                      "above), 0 when it did not.", "# TYPE tritonkit_tritonserver_up gauge",
                      f"tritonkit_tritonserver_up {int(tritonserver_up)}"]
        return "\n".join(lines) + "\n"
