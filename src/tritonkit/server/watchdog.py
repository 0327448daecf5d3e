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
the health file, which the front (guard.py) reads to answer readiness "not ready" over HTTP and gRPC. Repeated
crashes back off exponentially; after ``MAX_RECOVERIES`` in ``WINDOW_S`` the watchdog gives up: liveness fails and
the launcher exits, so an orchestrator restarts the pod instead of serving a crash loop.

The last resort is a fresh tritonserver (``TritonServer.restart``): when it died, when it has not answered the
watchdog for ``UNRESPONSIVE_S``, or when a reload failed, the launcher restarts it behind the same front (readiness
503, liveness 200 meanwhile), at most 3 times in 10 minutes with backoff; then it gives up as above.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from tritonkit.server.settings import ADMIN_HEADER
from tritonkit.steps.heartbeat import busy_for

STUB = "triton_python_backend_stub"
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


@dataclasses.dataclass(frozen=True)
class Stub:
    """One Python stub process under tritonserver."""

    pid: int
    model: str
    version: str
    state: str  # /proc state letter: R, S, D, T (stopped), Z (zombie)...


def children_of(pid: int) -> list[int]:
    """The pids of ``pid``'s children, from /proc (every thread's list: a child belongs to the thread that made it)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def child_running(pid: int, marker: bytes) -> int | None:
    """The first child of ``pid`` whose command line contains ``marker``, or None."""
    for child in children_of(pid):
        try:
            if marker in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


def tritonserver_of(launcher_pid: int) -> int | None:
    """The pid of the tritonserver a launcher (``python -m tritonkit.server``) runs now, or None."""
    return child_running(launcher_pid, b"/tritonserver\0")


def stubs_of(server_pid: int) -> list[Stub]:
    """The stub processes that are children of ``server_pid``."""
    return [stub for stub in map(_stub, children_of(server_pid)) if stub is not None]


def _reread(stubs: list[Stub], server_pid: int) -> list[Stub]:
    """``stubs`` with their state read again; a gone one (or its pid now another process's) is left out."""
    found = []
    for stub in stubs:
        try:
            fields = Path(f"/proc/{stub.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(server_pid):  # field 4: the parent's pid
            found.append(dataclasses.replace(stub, state=fields[0]))
    return found


def _stub_argv(pid: int) -> list[bytes] | None:
    """A stub's command line (``stub model_file region default_size growth_size parent_pid ...``), or None for any
    other process (or one gone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return argv if argv[0].endswith(STUB.encode()) and len(argv) > 1 else None


def _stub(pid: int) -> Stub | None:
    argv = _stub_argv(pid)
    if argv is None:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    model_file = Path(argv[1].decode())  # <repository>/<model>/<version>/model.py|model.onnx
    if len(model_file.parts) < 3:
        return None
    return Stub(pid, model_file.parts[-3], model_file.parts[-2], state)


ORPHAN_EXIT_S = 5.0  # a killed tritonserver's stubs, killed in turn, are gone within this


def orphans_of(server_pid: int) -> dict[int, str]:
    """The stubs a dead tritonserver left (pid -> its shared-memory region), found by the parent pid in their
    command line: they are nobody's children now."""
    found = {}
    for entry in Path("/proc").iterdir():
        argv = _stub_argv(int(entry.name)) if entry.name.isdigit() else None
        if argv is not None and len(argv) > 5 and argv[5] == str(server_pid).encode():
            found[int(entry.name)] = argv[2].decode(errors="replace")
    return found


def clear_orphans(server_pid: int, shm_dir: Path = Path("/dev/shm")) -> int:
    """Kills the stubs a dead ``server_pid`` left, waits until they are gone, and removes their shared-memory
    regions; returns how many there were.

    A tritonserver killed with SIGKILL leaves its stubs running until each notices (they poll every 300 ms), and
    their regions in ``/dev/shm`` for good (1 MiB or more each, 18 for our repositories).
    """
    orphans = orphans_of(server_pid)
    for pid in orphans:
        _kill(pid)
    deadline = time.monotonic() + ORPHAN_EXIT_S
    while orphans_of(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL lands asynchronously; a dead stub's command line reads empty at once
    for region in orphans.values():
        if region and "/" not in region:
            with contextlib.suppress(OSError):
                (shm_dir / region).unlink()
    return len(orphans)


class HealthFile:
    """What the watchdog tells the front (guard.py): models down now, whether it gave up, recoveries so far."""

    def __init__(self, path: Path):
        self.path = path
        self.down: set[str] = set()
        self.gave_up = False
        self.restarting = False  # tritonserver itself is being restarted: down, but alive
        self.server_restarts = 0
        self.recoveries: Counter[tuple[str, str]] = Counter()
        self.write()

    def write(self) -> None:
        state = {"down": sorted(self.down), "gave_up": self.gave_up, "restarting": self.restarting,
                 "server_restarts": self.server_restarts,
                 "recoveries": [{"model": m, "cause": c, "count": n} for (m, c), n in sorted(self.recoveries.items())]}
        tmp = self.path.with_name(f"{self.path.name}.tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.path)  # the guard never reads half a file


class Watchdog(threading.Thread):
    """Watches the stubs of one tritonserver and reloads a model whose stub died or stopped.

    Args:
        server_pid: tritonserver's pid.
        http_url: tritonserver's own HTTP endpoint (behind the guard), for the index, configs and reloads.
        admin_key: the repository API's key.
        health: where the guard reads what is down.
        heartbeats: the stubs' busy marks (``TRITONKIT_HEARTBEAT_DIR``); ``None`` finds no hang.
        hang_s: a stub busy in one ``execute`` for longer than this is hung.
        stub_backends: the backends whose instances run in stubs (the others are not watched).
    """

    def __init__(self, *, server_pid: int, http_url: str, admin_key: str, health: HealthFile,
                 heartbeats: Path | None = None, hang_s: float = 10.0,
                 stub_backends: frozenset[str] = EMBEDDED_STUB_BACKENDS):
        super().__init__(name="tritonkit-watchdog", daemon=True)
        self.server_pid, self.http_url, self.admin_key, self.health = server_pid, http_url, admin_key, health
        self.heartbeats, self.hang_s, self.stub_backends = heartbeats, hang_s, stub_backends
        self.stopping = threading.Event()
        self.restart_wanted: str | None = None  # why tritonserver must be restarted (read by TritonServer.wait)
        self._silent_since: float | None = None
        self._instances: dict[str, int] = {}  # model -> stubs per version (0: no stub, e.g. an ensemble)
        self._dependents: dict[str, set[str]] = {}  # model -> ensembles that use it
        self._history: dict[str, list[float]] = {}
        self._known: list[Stub] | None = None  # the stubs found by the last full walk, re-read each pass

    def run(self) -> None:
        while not self.stopping.wait(POLL_S):
            if self.restart_wanted or self.health.restarting:
                continue  # TritonServer.wait restarts tritonserver and clears both
            try:
                self.check()
                self._silent_since = None
            except (OSError, ValueError) as exc:  # tritonserver busy or going away: try again next poll
                _log(f"check skipped: {exc}")
                self._silent_since = self._silent_since or time.monotonic()
                if time.monotonic() - self._silent_since > UNRESPONSIVE_S:
                    self.restart_wanted = f"tritonserver has not answered the watchdog for {UNRESPONSIVE_S} s"
            if self.health.gave_up:
                return

    def check(self) -> None:
        """One pass: reload every model with a missing, stopped or hung stub.

        The stubs found last pass are re-read first (a /proc stat file each). Only when one of them is gone or a
        READY model lacks stubs does the pass walk tritonserver's /proc children: that reads a file per thread, and
        tritonserver runs about 670, so walking every pass cost 19 ms, 7 % of a CPU at 4 passes a second.
        """
        ready = self._ready_versions()
        if self._known is not None and self._trouble(ready, known := _reread(self._known, self.server_pid)) is None:
            self._known = known
            return
        self._known = stubs_of(self.server_pid)
        trouble = self._trouble(ready, self._known)
        if trouble is not None:
            self.recover(*trouble)

    def _trouble(self, ready: list[tuple[str, str]], stubs: list[Stub]) -> tuple[str, str, list[Stub]] | None:
        """The first READY model with a missing, stopped or hung stub: (model, cause, stubs to kill), else None."""
        for model, version in ready:
            expected = self._expected(model)
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

    def recover(self, model: str, cause: str, stuck: list[Stub]) -> None:
        """Marks ``model`` down, kills its ``stuck`` stubs, reloads it (with backoff) and marks it up, or gives up."""
        history = [t for t in self._history.get(model, []) if time.monotonic() - t < WINDOW_S]
        if len(history) >= MAX_RECOVERIES:
            self._give_up(model, cause, len(history))
            return
        self._mark_down({model} | self._dependents.get(model, set()))
        _log(f"{model}: stub {cause}; reloading it (recovery {len(history) + 1} in {WINDOW_S} s)")
        if history:
            time.sleep(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (len(history) - 1)))
        for stub in stuck:  # a stopped or hung stub would block its own unload
            _kill(stub.pid)
            if self.heartbeats is not None:
                (self.heartbeats / str(stub.pid)).unlink(missing_ok=True)
        started = time.monotonic()
        self._history[model] = [*history, started]
        try:
            self._request(f"/v2/repository/models/{model}/unload", {})
            self._request(f"/v2/repository/models/{model}/load", {}, timeout_s=RELOAD_TIMEOUT_S)
        except (OSError, ValueError) as exc:  # the last resort: a fresh tritonserver (see TritonServer.wait)
            self.restart_wanted = f"reloading {model} after a {cause} stub failed: {exc}"
            _log(f"{self.restart_wanted}; asking for a tritonserver restart")
            return
        self.health.recoveries[(model, cause)] += 1
        self._mark_up({model} | self._dependents.get(model, set()))
        _log(f"{model}: recovered from a {cause} stub in {time.monotonic() - started:.1f} s")
        from tritonkit.server import shm

        swept = shm.sweep(min_age_s=2)  # the dead stub's region: unmapped since its stub died; new ones are mapped
        if swept:
            _log(f"{model}: removed {len(swept)} shared-memory region(s) of dead stubs from /dev/shm")

    def _give_up(self, model: str, cause: str, count: int) -> None:
        _log(f"{model}: stub {cause} again after {count} recoveries in {WINDOW_S} s; giving up: liveness fails "
             "so the orchestrator restarts the server")
        self.health.gave_up = True
        self._mark_down({model} | self._dependents.get(model, set()))

    def _mark_down(self, models: set[str]) -> None:
        self.health.down |= models
        self.health.write()

    def _mark_up(self, models: set[str]) -> None:
        self.health.down -= models
        self.health.write()

    def _ready_versions(self) -> list[tuple[str, str]]:
        index = self._request("/v2/repository/index", {})
        ready = [(entry["name"], str(entry.get("version", ""))) for entry in index if entry.get("state") == "READY"]
        new = {name for name, _ in ready if name not in self._instances}
        for name in sorted(new):
            self._learn(name)
        if new:
            self.health.write()  # the new models' recovery counters, at 0
        return ready

    def _learn(self, model: str) -> None:
        """Stubs per version of ``model`` and, for an ensemble, which models it uses.

        A watched model's recovery counters start at 0 for every cause, so that Prometheus sees the first
        recovery as an increase (a counter series that appears at 1 has no increase).
        """
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
        for cause in CAUSES:
            self.health.recoveries[(model, cause)] += 0

    def _expected(self, model: str) -> int:
        return self._instances.get(model, 0)

    def _request(self, path: str, body: dict | None, timeout_s: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.http_url + path, data=data, method="GET" if body is None else "POST",
                                         headers={ADMIN_HEADER: self.admin_key})
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            payload = answer.read()
        return json.loads(payload) if payload else {}


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died meanwhile: what we wanted
        os.kill(pid, signal.SIGKILL)


def _log(message: str) -> None:
    print(f"watchdog: {message}", file=sys.stderr, flush=True)
