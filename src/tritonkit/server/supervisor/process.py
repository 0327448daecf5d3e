"""``TritonServer``: the one owner of a tritonserver process; the launcher, load test, bench and tests use it.

    with TritonServer(ServerSettings.from_env(), log_path=Path("server.log")) as server:
        ...  # ready and supervised here; stopped (gracefully, then forcibly) on the way out

Two ways to run, one owner:
  embedded (default)  the tritonserver binary of the ``nvidia-pytriton`` wheel, with the front
                      (``python -m tritonkit.server.front``) on the public ports when ``settings.http_guard``;
  launcher            ``python -m tritonkit.server`` (what `make serve` runs) as the child, which owns the
                      binary in turn: for tests of the launcher itself and for tools that want its banner.

Supervision is a step of its own (``supervise``, which ``__enter__`` and the launcher take once the server is
ready): it starts the watchdog and the supervisor thread. The watchdog reports what it finds as events into a
queue; the supervisor thread alone applies them to the health state (``server/health.py``), restarts tritonserver
when it died, when a reload failed or when anyone asks (``request_restart``, from any thread: every request made
before a restart finished is served by the tritonserver it made, so requests at once restart it once), and stops
the children when asked (``stop``). So every change of the owner's state happens on that one thread, and the
children it restarts live as long as it does.

Children are started by ``spawn`` (spawn.py): a session of their own, and SIGTERM when their owner dies.

Behind the front, tritonserver (and so every stub it forks) runs under ``SCHED_BATCH``: Linux then never lets it
preempt the front when it wakes, so the front, which answers every request and every refusal, runs its event loop
to the end instead of being switched out at each request it writes to tritonserver. No privilege is needed and
nothing is taken from tritonserver when the front is idle. Measured on one core, A/B in one server
(``scripts/sched-ab.sh``): the tabular models, whose bottleneck is the front, answer about 40 % more per second;
the text models are unchanged (step 5 of ``bench/results/TUNING.md``).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tritonkit.client.health import ServerNotReady, wait_until_ready
from tritonkit.server import logs
from tritonkit.server.command import EXIT_TIMEOUT_S, PrivatePorts, front_command, launcher_args
from tritonkit.server.errors import NotExported
from tritonkit.server.health import HealthState
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import LOOPBACK, ServerSettings
from tritonkit.server.supervisor import embedded, shm
from tritonkit.server.supervisor.base import READY_TIMEOUT_S, ServerProcess
from tritonkit.server.supervisor.procfs import clear_orphans
from tritonkit.server.supervisor.spawn import spawn
from tritonkit.server.supervisor.watchdog import (
    EMBEDDED_STUB_BACKENDS,
    NATIVE_STUB_BACKENDS,
    Down,
    Event,
    GaveUp,
    Recovered,
    RestartWanted,
    Watchdog,
    Watched,
)
from tritonkit.steps import heartbeat

STOP_GRACE_S = EXIT_TIMEOUT_S + 5  # tritonserver finishes in-flight requests first; then SIGKILL
LOG_TAIL_CHARS = 6000
WATCHDOG_GAVE_UP = 3  # the launcher's exit code when a model or tritonserver crash-loops (see watchdog.py)
MAX_SERVER_RESTARTS = 3  # tritonserver restarts in SERVER_RESTART_WINDOW_S before giving up
SERVER_RESTART_WINDOW_S = 600
SERVER_RESTART_BACKOFF_S = 2.0  # before the second restart in the window; doubles after
SUPERVISOR_POLL_S = 0.25  # how often the supervisor thread looks at its children between events
log = logging.getLogger("tritonkit.supervisor")


class _Stop:
    """The supervisor thread's last event: stop the children with ``timeout_s`` each."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s


class TritonServer(ServerProcess):
    """Starts, waits for, supervises, logs and stops one tritonserver (and its front). A context manager.

    Args:
        settings: ports, host, admin key, repositories, model control, front, watchdog.
        launcher: run ``python -m tritonkit.server`` as the child instead of the binary (see module docstring).
        log_path: where the children's output goes; ``None`` leaves it on this process's terminal.
        cpus: CPU numbers the children are pinned to (the benchmark's server CPUs); ``None`` leaves them free.
        env: extra environment for the children (wins over the settings' ``TRITON_ADMIN_KEY``).
        backend_directory: where the embedded backends are laid out (default ``.triton/backends``).
    """

    def __init__(self, settings: ServerSettings, *, launcher: bool = False, log_path: Path | None = None,
                 cpus: set[int] | None = None, env: Mapping[str, str] | None = None,
                 backend_directory: Path | None = None):
        self.settings = settings
        self.launcher = launcher
        self.log_path = log_path
        self.cpus = cpus
        self.env = dict(env or {})
        self.backend_directory = backend_directory
        self.processes: list[subprocess.Popen] = []
        self._private = PrivatePorts(*free_ports(3)) if settings.http_guard and not launcher else None
        self.watchdog: Watchdog | None = None
        self.health: HealthState | None = None
        self.health_file: Path | None = None
        if settings.watchdog and not launcher:
            self.health_file = Path(tempfile.mkdtemp(prefix="tritonkit-health-")) / "health.json"
            self.health = HealthState(self.health_file)
        self._restarts: list[float] = []
        self._restarted_at = float("-inf")  # when the last restart had the new tritonserver ready
        self._events: queue.Queue[Event | _Stop] = queue.Queue()
        self._supervisor: threading.Thread | None = None
        self._verdict: int | None = None  # the supervisor thread's exit code for wait(), once it ended
        self._stopping = threading.Event()  # stop() was called: a restart in progress gives way
        self._stop_lock = threading.Lock()
        self._stop_code: int | None = None

    # -- what runs ------------------------------------------------------------------------------

    def commands(self) -> list[list[str]]:
        """The argv of each child, in start order (tritonserver or the launcher first)."""
        if self.launcher:
            return [self._launcher_command()]
        directory = self.backend_directory or embedded.default_backend_directory()
        commands = [embedded.embedded_command(self.settings, directory, self._private)]
        if self._private is not None:
            commands.append(front_command(self.settings, self._private, self.health_file))
        return commands

    def _launcher_command(self) -> list[str]:
        s = self.settings
        argv = [sys.executable, "-m", "tritonkit.server", "--host", s.host, *launcher_args(s)]
        for repository in s.repositories:
            argv += ["--model-repository", str(repository)]
        return argv

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> TritonServer:
        """Starts the children without waiting for readiness.

        Raises:
            NotExported: a repository has a model without any version folder (embedded mode).
            EmbeddedServerError: the embedded binary or its Python stub is missing.
        """
        if self.processes:
            raise RuntimeError("this TritonServer was already started; create another one")
        if not self.launcher:
            missing = missing_versions(self.settings.repositories)
            if missing:
                raise NotExported("not exported yet: " + ", ".join(missing) + "\nfix: run `make export`")
            if embedded.native_binary() is None:
                embedded.prepare_backends(self.backend_directory)
            swept = shm.sweep()
            if swept:
                log.info("removed %d shared-memory region(s) no process maps (left by killed stubs) before starting "
                         "tritonserver", len(swept))
        output = self.log_path.open("ab") if self.log_path is not None else None
        try:
            environment = self._environment()
            for index, argv in enumerate(self.commands()):
                self.processes.append(self._spawn(argv, environment, output, first=index == 0))
        finally:
            if output is not None:
                output.close()  # the children hold their own copies
        return self

    def _environment(self) -> dict[str, str]:
        base = {**os.environ, "TRITON_ADMIN_KEY": self.settings.admin_key, **self.env}
        base.pop("HOST", None)  # the launcher gets --host; a stray HOST must not override the settings
        base.pop(heartbeat.DIR_ENV, None)
        heartbeats = self._heartbeats()
        if heartbeats is not None:
            heartbeats.mkdir(exist_ok=True)
            base[heartbeat.DIR_ENV] = str(heartbeats)  # the stubs mark their execute busy there
        return base if self.launcher or embedded.native_binary() else embedded.server_environment(base)

    def _heartbeats(self) -> Path | None:
        return None if self.health_file is None else self.health_file.parent / "heartbeats"

    def _spawn(self, argv: list[str], env: dict[str, str], output, *, first: bool) -> subprocess.Popen:
        """``first``: the first of ``commands()``, tritonserver itself when not ``launcher``. Logging as JSON,
        tritonserver's output is relayed line by line as JSON objects (logs.relay)."""
        behind_front = first and self._private is not None
        relayed = first and not self.launcher and logs.current_format() == "json"
        process = spawn(argv, env=env, cwd=self._cwd(), output=subprocess.PIPE if relayed else output,
                        cpus=self.cpus, batch=behind_front)
        if relayed:
            assert process.stdout is not None
            destination = self.log_path.open("ab") if self.log_path is not None else sys.stderr.buffer
            logs.relay(process.stdout, destination)
        return process

    @staticmethod
    def _cwd() -> str | None:
        from tritonkit import paths

        try:
            return str(paths.root())
        except paths.ProjectNotFound:
            return None

    def wait_until_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Polls readiness until ``timeout_s``; returns the seconds waited. Starts nothing (see ``supervise``).

        Raises:
            ServerNotReady: the deadline passed or a child exited first (the message ends with the log tail).
        """
        try:
            return wait_until_ready(self.settings.http_url, timeout_s, alive=self.alive)
        except ServerNotReady as exc:
            raise ServerNotReady(f"{exc}{self._log_tail()}") from None

    def supervise(self) -> None:
        """Starts the watchdog and the supervisor thread (see the module docstring); call it once the server is
        ready. A no-op without a watchdog (``settings.watchdog`` off, or the launcher, which supervises itself)."""
        if self.health is None or self._supervisor is not None:
            return
        self._start_watchdog(self.processes[0].pid)
        self._supervisor = threading.Thread(target=self._supervise, name="tritonkit-supervisor", daemon=True)
        self._supervisor.start()

    def _start_watchdog(self, server_pid: int) -> None:
        history = self.watchdog.history if self.watchdog is not None else None
        self.watchdog = Watchdog(server_pid=server_pid, http_url=self._direct_http_url(),
                                 admin_key=self.settings.admin_key, emit=self._events.put,
                                 heartbeats=self._heartbeats(), hang_s=self.settings.hang_s,
                                 stub_backends=NATIVE_STUB_BACKENDS if embedded.native_binary()
                                 else EMBEDDED_STUB_BACKENDS, history=history)
        self.watchdog.start()

    def request_restart(self, why: str) -> None:
        """Asks the supervisor thread for a fresh tritonserver (safe from any thread; needs ``supervise``)."""
        if self._supervisor is None:
            raise RuntimeError("request_restart needs a supervised server: call supervise() first")
        self._events.put(RestartWanted(self.processes[0].pid, why=why))

    def _direct_http_url(self) -> str:
        """tritonserver's own HTTP endpoint: behind the front when there is one."""
        if self._private is None:
            return self.settings.http_url
        return f"http://{LOOPBACK}:{self._private.http}"

    def alive(self) -> bool:
        """True while every child runs."""
        return bool(self.processes) and all(process.poll() is None for process in self.processes)

    @property
    def pid(self) -> int:
        """The pid of tritonserver (embedded) or of the launcher."""
        return self.processes[0].pid

    def wait(self) -> int:
        """Blocks until the server ends for good, stops the other children, and returns its code.

        Supervised, tritonserver is restarted when it dies or when a reload failed, up to ``MAX_SERVER_RESTARTS``
        in ``SERVER_RESTART_WINDOW_S``; then, or when the watchdog gave up on a model, everything stops with
        ``WATCHDOG_GAVE_UP``. When the front exits first, tritonserver is stopped too and the front's code (or 1)
        is returned.
        """
        if self._supervisor is not None:
            while self._supervisor.is_alive():
                self._supervisor.join(0.5)  # a timed join: Ctrl-C (KeyboardInterrupt) still reaches this thread
            return self._verdict if self._verdict is not None else self.stop()
        while self.alive():
            time.sleep(0.5)
        return self._ended()

    def _ended(self) -> int:
        """After a child exited: stops the others and returns the code ``wait`` reports."""
        exited = next(process for process in self.processes if process.poll() is not None)
        code = self._stop_children(STOP_GRACE_S)
        if exited is self.processes[0]:
            return code
        log.error("the front exited (%s); tritonserver was stopped too", exited.returncode)
        return exited.returncode or 1

    # -- the supervisor thread --------------------------------------------------------------------

    def _supervise(self) -> None:
        """The one thread that changes the owner's state: applies events, restarts, stops."""
        while True:
            try:
                event = self._events.get(timeout=SUPERVISOR_POLL_S)
            except queue.Empty:
                event = None
            if isinstance(event, _Stop):
                self._verdict = self._stop_children(event.timeout_s)
                return
            if event is not None:
                verdict = self._apply(event)
            elif self.processes[0].poll() is not None:
                verdict = self._restart_or_give_up(f"tritonserver exited with code {self.processes[0].poll()}")
            elif not self.alive():
                verdict = self._ended()
            else:
                verdict = None
            if verdict is not None:
                self._verdict = verdict
                return

    def _apply(self, event: Event) -> int | None:
        """One event, applied to the health state; an exit code when the server must end."""
        assert self.health is not None
        if event.server_pid != self.processes[0].pid:
            return None  # from the watchdog of a tritonserver since replaced
        if isinstance(event, Watched):
            for cause in ("died", "stopped", "hung"):
                self.health.recoveries[(event.model, cause)] += 0
        elif isinstance(event, Down):
            self.health.down |= event.models
        elif isinstance(event, Recovered):
            self.health.recoveries[(event.model, event.cause)] += 1
            self.health.down -= event.models
        elif isinstance(event, GaveUp):
            self.health.gave_up = True
            self.health.write()
            log.error("the watchdog gave up on a crash loop (%s); stopping so the server is restarted", event.why)
            self._stop_children(STOP_GRACE_S)
            return WATCHDOG_GAVE_UP
        elif isinstance(event, RestartWanted):
            if event.at < self._restarted_at:
                return None  # asked for before the last restart finished: the tritonserver it made answers it
            return self._restart_or_give_up(event.why)
        self.health.write()
        return None

    def _restart_or_give_up(self, why: str) -> int | None:
        if self.restart(why):
            return None
        self._stop_children(STOP_GRACE_S)
        return WATCHDOG_GAVE_UP

    def restart(self, why: str) -> bool:
        """The last resort: a fresh tritonserver behind the same front; False when it must give up. Runs on the
        supervisor thread (anyone else asks with ``request_restart``).

        Readiness answers 503 and liveness 200 meanwhile. Restarts back off (``SERVER_RESTART_BACKOFF_S``
        doubling) and are counted in ``tritonkit_tritonserver_restarts_total``.
        """
        assert self.health is not None and self.watchdog is not None
        now = time.monotonic()
        self._restarts = [at for at in self._restarts if now - at < SERVER_RESTART_WINDOW_S]
        if len(self._restarts) >= MAX_SERVER_RESTARTS:
            log.error("%s; tritonserver was already restarted %d times in %d s: giving up so the orchestrator "
                      "restarts the whole server", why, len(self._restarts), SERVER_RESTART_WINDOW_S)
            self.health.gave_up = True
            self.health.write()
            return False
        self.health.restarting, self.health.down = True, self.health.down | {"tritonserver"}
        self.health.write()
        log.warning("%s; restarting tritonserver (restart %d in %d s)", why, len(self._restarts) + 1,
                    SERVER_RESTART_WINDOW_S)
        self.watchdog.stopping.set()
        self.watchdog.join()  # it watched the old tritonserver; the new one gets its own
        if self._restarts and self._stopping.wait(SERVER_RESTART_BACKOFF_S * 2 ** (len(self._restarts) - 1)):
            return True  # stopping: the _Stop event that follows stops the children
        self._restarts.append(time.monotonic())
        old = self.processes[0]
        if old.poll() is None:
            old.send_signal(signal.SIGINT)
            try:
                old.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                old.kill()
                old.wait()
        self._clear_orphans(old)
        output = self.log_path.open("ab") if self.log_path is not None else None
        try:
            self.processes[0] = self._spawn(self.commands()[0], self._environment(), output, first=True)
        finally:
            if output is not None:
                output.close()
        try:
            wait_until_ready(self._direct_http_url(), READY_TIMEOUT_S,
                             alive=lambda: self.processes[0].poll() is None and not self._stopping.is_set())
        except ServerNotReady as exc:
            if self._stopping.is_set():
                return True
            log.error("the restarted tritonserver did not become ready: %s", exc)
            return self.restart("the restarted tritonserver did not become ready")
        self._restarted_at = time.monotonic()
        self.health.server_restarts += 1
        self.health.restarting, self.health.down = False, set()  # every model was loaded afresh
        self.health.write()
        self._start_watchdog(self.processes[0].pid)
        log.info("tritonserver restarted (pid %d) and ready", self.processes[0].pid)
        return True

    # -- stopping -------------------------------------------------------------------------------

    def stop(self, timeout_s: float | None = None) -> int:
        """Stops the children, last started first, and returns the first one's exit code (again at a second call).

        Supervised, the supervisor thread does it (it may be restarting tritonserver) and this waits for it. The
        front goes first: it finishes its in-flight requests and closes its pooled connections, which tritonserver
        would otherwise wait on. Each child gets SIGINT and ``timeout_s``, then SIGKILL.
        """
        timeout_s = STOP_GRACE_S if timeout_s is None else timeout_s
        self._stopping.set()
        supervisor = self._supervisor
        if supervisor is not None and supervisor.is_alive() and supervisor is not threading.current_thread():
            self._events.put(_Stop(timeout_s))
            while supervisor.is_alive():
                supervisor.join(0.5)
        return self._stop_children(timeout_s)

    def _stop_children(self, timeout_s: float) -> int:
        with self._stop_lock:
            if self._stop_code is not None:
                return self._stop_code
            if self.watchdog is not None:
                self.watchdog.stopping.set()  # no reload while the server goes down
            codes = []
            for process in reversed(self.processes):
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                try:
                    codes.append(process.wait(timeout_s))
                except (subprocess.TimeoutExpired, KeyboardInterrupt):
                    process.kill()
                    codes.append(process.wait())
            if self.processes:
                self._clear_orphans(self.processes[0])
            self._stop_code = self._exit_code(codes)
            return self._stop_code

    def _exit_code(self, codes: list[int]) -> int:
        if codes and codes[-1] == 1 and self._replaced_instances():
            # Triton 2.51 never finishes unloading an instance whose stub died: after waiting for the in-flight
            # requests, it waits out --exit-timeout-secs for those instances too and exits 1.
            log.info("tritonserver waited its %d s exit timeout for %d model instance(s) whose dead stub the "
                     "watchdog replaced (Triton 2.51 cannot unload them; it waits for in-flight requests before that)",
                     EXIT_TIMEOUT_S, self._replaced_instances())
            return 0
        return codes[-1] if codes else 0

    def _clear_orphans(self, server: subprocess.Popen) -> None:
        """Stubs and shared memory a killed tritonserver left behind (none after a clean exit)."""
        if self.launcher:
            return  # the launcher's own TritonServer clears them
        cleared = clear_orphans(server.pid)
        if cleared:
            log.info("cleared %d stub(s) and their shared memory left by tritonserver (pid %d)", cleared, server.pid)

    def _replaced_instances(self) -> int:
        return sum(self.health.recoveries.values()) if self.health is not None else 0

    # -- the log --------------------------------------------------------------------------------

    def log(self) -> str:
        """Everything the children wrote so far (empty when they write to the terminal)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float) -> None:
        """Waits until ``text`` appears in the log; raises ServerNotReady on the deadline or an exit."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if time.monotonic() > deadline or not self.alive():
                raise ServerNotReady(f"the server never printed {text!r}{self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self) -> str:
        log_text = self.log()
        return f"\n----- {self.log_path} (tail) -----\n{log_text[-LOG_TAIL_CHARS:]}" if log_text else ""


def missing_versions(repositories) -> list[str]:
    """Models whose folder has a config.pbtxt but no numeric version folder yet (not exported)."""
    missing = []
    for repository in repositories:
        for config in sorted(Path(repository).glob("*/config.pbtxt")):
            model = config.parent
            if not any(child.is_dir() and child.name.isdigit() for child in model.iterdir()):
                missing.append(f"{model.name} ({model})")
    return missing
