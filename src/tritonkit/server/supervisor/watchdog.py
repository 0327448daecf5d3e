"""The watchdog: a Python-backend model whose stub died, was stopped or hangs is reloaded; health says so meanwhile.

Triton 2.51 never restarts a dead Python stub (upstream server#8604): every later request to that model fails
with "Stub process '<model>_0_0' is not healthy" while ``/v2/health/ready`` answers 200. On the embedded server
every step and every ONNX model (the Python-based ORT backend) runs in such a stub.

Every ``POLL_S`` the watchdog compares, per READY model version (Triton's repository index), the instances its
config asks for with the stubs alive under tritonserver (from /proc: a stub's argv names its model file). It
reloads the model when a stub is
  - missing (``died``: kill -9, a segfault, the OOM killer);
  - stopped (``stopped``: SIGSTOP, state T);
  - busy in one ``execute`` for longer than the hang bound (``hung``: a deadlock, an endless loop). Every step
    and the ORT backend mark their ``execute`` busy (``tritonkit.steps.heartbeat``). The bound is
    ``WATCHDOG_HANG_S``, 10 s by default: the longest execute sampled (every 20 ms) while every public endpoint
    ran at twice its capacity took 0.37 s (MiniLM, batches of up to 32 texts, 2 busy cores).
A stopped or hung stub is killed first; then the model is unloaded and loaded through the repository API with the
admin key (a load alone of an unchanged model is a no-op). Measured here: a tokenizer step is back 1.4 s after the
kill, a two-instance MiniLM model 2.1 s. While a model is down, it and every ensemble that uses it are listed in
the health file, which the front reads to answer readiness "not ready" over HTTP and gRPC. Repeated crashes back
off exponentially; after ``MAX_RECOVERIES`` in ``WINDOW_S`` the watchdog gives up: liveness fails and the
launcher exits, so an orchestrator restarts the pod instead of serving a crash loop.

The last resort is a fresh tritonserver (``TritonServer.restart``): when it died, when it has not answered the
watchdog for ``UNRESPONSIVE_S``, or when a reload failed, the launcher restarts it behind the same front (readiness
503, liveness 200 meanwhile), at most 3 times in 10 minutes with backoff; then it gives up as above.

The watchdog changes nothing it shares: it tells its owner what it found through ``emit``, one event at a time
(``Down``, ``Recovered``, ``Watched``, ``GaveUp``, ``RestartWanted``, each naming the tritonserver it watched), and
the owner's one supervisor thread applies them to the health state and restarts tritonserver (process.py). After
``GaveUp`` or ``RestartWanted`` the watchdog ends: a restarted tritonserver gets a watchdog of its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tritonkit.server.settings import ADMIN_HEADER
from tritonkit.server.supervisor import procfs, shm
from tritonkit.server.supervisor.procfs import Stub
from tritonkit.steps.heartbeat import busy_for

POLL_S = 0.25  # /proc and one index request: cheap; a dead stub is found within this bound
RELOAD_TIMEOUT_S = 120  # loading MiniLM with warm-up on 2 busy cores
MAX_RECOVERIES = 5  # in WINDOW_S for one model, then give up (a crash loop is not healing)
WINDOW_S = 600
BACKOFF_BASE_S = 1.0  # wait before the n-th recovery within the window: base * 2**(n-2), none for the first
BACKOFF_CAP_S = 30.0
UNRESPONSIVE_S = 30.0  # tritonserver alive but not answering the index for this long: restart it
CAUSES = ("died", "stopped", "hung")
# Backends whose model instances run in stubs: on the embedded server our onnxruntime backend is Python-based too;
# in the NGC image (a native tritonserver) only the Python backend's are.
EMBEDDED_STUB_BACKENDS = frozenset({"python", "onnxruntime"})
NATIVE_STUB_BACKENDS = frozenset({"python"})
log = logging.getLogger("tritonkit.watchdog")


@dataclasses.dataclass(frozen=True)
class Event:
    """What a watchdog found; ``server_pid``: the tritonserver it watched (events of a replaced one are stale)."""

    server_pid: int
    at: float = dataclasses.field(default_factory=time.monotonic, kw_only=True)


@dataclasses.dataclass(frozen=True)
class Watched(Event):
    """``model`` runs in stubs and is watched from now on (its recovery counters start at 0)."""

    model: str


@dataclasses.dataclass(frozen=True)
class Down(Event):
    """``models`` (a model and the ensembles that use it) cannot answer while ``model`` is reloaded."""

    model: str
    cause: str
    models: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Recovered(Event):
    """``model`` was reloaded after a ``cause`` stub; ``models`` answer again."""

    model: str
    cause: str
    models: frozenset[str]


@dataclasses.dataclass(frozen=True)
class GaveUp(Event):
    """``model`` crash-loops; the server must go (liveness fails, the launcher exits)."""

    model: str
    why: str


@dataclasses.dataclass(frozen=True)
class RestartWanted(Event):
    """Only a fresh tritonserver can help: it died, stopped answering, or a reload failed."""

    why: str


class Watchdog(threading.Thread):
    """Watches the stubs of one tritonserver and reloads a model whose stub died, stopped or hung.

    Args:
        server_pid: tritonserver's pid.
        http_url: tritonserver's own HTTP endpoint (behind the front), for the index, configs and reloads.
        admin_key: the repository API's key.
        emit: called with each ``Event`` (from this thread; the owner queues it for its own thread).
        heartbeats: the stubs' busy marks (``TRITONKIT_HEARTBEAT_DIR``); ``None`` finds no hang.
        hang_s: a stub busy in one ``execute`` for longer than this is hung.
        stub_backends: the backends whose instances run in stubs (the others are not watched).
        history: recovery times per model from the watchdog of the tritonserver this one replaces (the backoff
            and the crash-loop bound span restarts).
    """

    def __init__(self, *, server_pid: int, http_url: str, admin_key: str, emit: Callable[[Event], None],
                 heartbeats: Path | None = None, hang_s: float = 10.0,
                 stub_backends: frozenset[str] = EMBEDDED_STUB_BACKENDS,
                 history: dict[str, list[float]] | None = None):
        super().__init__(name="tritonkit-watchdog", daemon=True)
        self.server_pid, self.http_url, self.admin_key, self.emit = server_pid, http_url, admin_key, emit
        self.heartbeats, self.hang_s, self.stub_backends = heartbeats, hang_s, stub_backends
        self.stopping = threading.Event()
        self.history: dict[str, list[float]] = dict(history or {})
        self._silent_since: float | None = None
        self._instances: dict[str, int] = {}  # model -> stubs per version (0: no stub, e.g. an ensemble)
        self._dependents: dict[str, set[str]] = {}  # model -> ensembles that use it
        self._known: list[Stub] | None = None  # the stubs found by the last full walk, re-read each pass

    def run(self) -> None:
        while not self.stopping.wait(POLL_S):
            try:
                ended = self.check()
                self._silent_since = None
            except (OSError, ValueError) as exc:  # tritonserver busy or going away: try again next poll
                log.info("check skipped: %s", exc)
                self._silent_since = self._silent_since or time.monotonic()
                ended = time.monotonic() - self._silent_since > UNRESPONSIVE_S
                if ended:
                    self.emit(RestartWanted(self.server_pid,
                                            why=f"tritonserver has not answered the watchdog for {UNRESPONSIVE_S} s"))
            if ended:
                return

    def check(self) -> bool:
        """One pass: reload a model with a missing, stopped or hung stub; True when this watchdog's work ended.

        The stubs found last pass are re-read first (a /proc stat file each). Only when one of them is gone or a
        READY model lacks stubs does the pass walk tritonserver's /proc children: that reads a file per thread, and
        tritonserver runs about 670, so walking every pass cost 19 ms, 7 % of a CPU at 4 passes a second.
        """
        ready = self._ready_versions()
        if self._known is not None:
            known = procfs.reread(self._known, self.server_pid)
            if self._trouble(ready, known) is None:
                self._known = known
                return False
        self._known = procfs.stubs_of(self.server_pid)
        trouble = self._trouble(ready, self._known)
        return self.recover(*trouble) if trouble is not None else False

    def _trouble(self, ready: list[tuple[str, str]], stubs: list[Stub]) -> tuple[str, str, list[Stub]] | None:
        """The first READY model with a missing, stopped or hung stub: (model, cause, stubs to kill), else None."""
        for model, version in ready:
            expected = self._instances.get(model, 0)
            if not expected:
                continue
            mine = [s for s in stubs if s.model == model and s.version == version]
            stopped = [s for s in mine if s.state == "T"]
            alive = [s for s in mine if s.state not in ("T", "Z", "X")]
            hung = [s for s in alive if self._busy_for(s) > self.hang_s]
            if stopped or hung or len(alive) < expected:
                return model, "stopped" if stopped else "hung" if hung else "died", stopped + hung
        return None  # the caller recovers one model a pass: the index changes under a reload

    def _busy_for(self, stub: Stub) -> float:
        return 0.0 if self.heartbeats is None else busy_for(self.heartbeats, stub.pid)

    def recover(self, model: str, cause: str, stuck: list[Stub]) -> bool:
        """Reports ``model`` down, kills its ``stuck`` stubs, reloads it (with backoff) and reports it recovered;
        or gives up, or asks for a fresh tritonserver. True when this watchdog's work ended."""
        history = [t for t in self.history.get(model, []) if time.monotonic() - t < WINDOW_S]
        affected = frozenset({model} | self._dependents.get(model, set()))
        if len(history) >= MAX_RECOVERIES:
            why = f"{model}: stub {cause} again after {len(history)} recoveries in {WINDOW_S} s"
            log.error("%s; giving up: liveness fails so the orchestrator restarts the server", why)
            self.emit(Down(self.server_pid, model=model, cause=cause, models=affected))
            self.emit(GaveUp(self.server_pid, model=model, why=why))
            return True
        self.emit(Down(self.server_pid, model=model, cause=cause, models=affected))
        log.warning("%s: stub %s; reloading it (recovery %d in %d s)", model, cause, len(history) + 1, WINDOW_S)
        if history:
            time.sleep(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (len(history) - 1)))
        for stub in stuck:  # a stopped or hung stub would block its own unload
            procfs.kill(stub.pid)
            if self.heartbeats is not None:
                (self.heartbeats / str(stub.pid)).unlink(missing_ok=True)
        started = time.monotonic()
        self.history[model] = [*history, started]
        try:
            self._request(f"/v2/repository/models/{model}/unload", {})
            self._request(f"/v2/repository/models/{model}/load", {}, timeout_s=RELOAD_TIMEOUT_S)
        except (OSError, ValueError) as exc:  # the last resort: a fresh tritonserver (see TritonServer.restart)
            why = f"reloading {model} after a {cause} stub failed: {exc}"
            log.error("%s; asking for a tritonserver restart", why)
            self.emit(RestartWanted(self.server_pid, why=why))
            return True
        self.emit(Recovered(self.server_pid, model=model, cause=cause, models=affected))
        log.info("%s: recovered from a %s stub in %.1f s", model, cause, time.monotonic() - started)
        swept = shm.sweep(min_age_s=2)  # the dead stub's region: unmapped since its stub died; new ones are mapped
        if swept:
            log.info("%s: removed %d shared-memory region(s) of dead stubs from /dev/shm", model, len(swept))
        return False

    def _ready_versions(self) -> list[tuple[str, str]]:
        index = self._request("/v2/repository/index", {})
        ready = [(entry["name"], str(entry.get("version", ""))) for entry in index if entry.get("state") == "READY"]
        for name in sorted({name for name, _ in ready if name not in self._instances}):
            self._learn(name)
        return ready

    def _learn(self, model: str) -> None:
        """Stubs per version of ``model`` and, for an ensemble, which models it uses; a watched model is announced
        (``Watched``) so that its counters start at 0 and Prometheus sees the first recovery as an increase."""
        config = self._request(f"/v2/models/{model}/config", None)
        if config.get("platform") == "ensemble":
            self._instances[model] = 0
            for step in config.get("ensemble_scheduling", {}).get("step", []):
                self._dependents.setdefault(step["model_name"], set()).add(model)
            return
        if config.get("backend") not in self.stub_backends:
            self._instances[model] = 0  # runs inside tritonserver: nothing to watch
            return
        groups = config.get("instance_group") or [{"count": 1}]
        self._instances[model] = sum(int(group.get("count", 1)) for group in groups)
        self.emit(Watched(self.server_pid, model=model))

    def _request(self, path: str, body: dict | None, timeout_s: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.http_url + path, data=data, method="GET" if body is None else "POST",
                                         headers={ADMIN_HEADER: self.admin_key})
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            payload = answer.read()
        return json.loads(payload) if payload else {}
