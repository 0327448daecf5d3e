"""``TritonServer``: the one owner of a tritonserver process; the launcher, load test, bench and tests use it.

    with TritonServer(ServerSettings.from_env(), log_path=Path("server.log")) as server:
        ...  # ready here; stopped (gracefully, then forcibly) on the way out

Two ways to run, one owner:
  embedded (default)  the tritonserver binary of the ``nvidia-pytriton`` wheel, with ``tritonkit.server.guard``
                      on the public HTTP port when ``settings.http_guard`` (see embedded.py and guard.py);
  launcher            ``python -m tritonkit.server`` (what `make serve` runs) as the child, which owns the
                      binary in turn: for tests of the launcher itself and for tools that want its banner.

Every child runs in a session of its own, so a terminal's Ctrl-C reaches only the owner, which passes on
exactly one signal; and every child is started with ``PR_SET_PDEATHSIG=SIGTERM``, so when the owner dies,
even by SIGKILL, the kernel tells the child to stop and nothing is left running. (The signal follows the
thread that started the child: start servers from a thread that lives as long as they should.)

Behind the front, tritonserver (and so every stub it forks) runs under ``SCHED_BATCH``: Linux then never lets it
preempt the front when it wakes, so the front, which answers every request and every refusal, runs its event loop
to the end instead of being switched out at each request it writes to tritonserver. No privilege is needed and
nothing is taken from tritonserver when the front is idle. Measured on one core, A/B in one server
(``scripts/sched-ab.sh``): the tabular models, whose bottleneck is the front, answer about 40 % more per second;
the text models are unchanged (step 5 of ``bench/results/TUNING.md``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tritonkit.client.health import ServerNotReady, wait_until_ready
from tritonkit.server import embedded
from tritonkit.server.command import EXIT_TIMEOUT_S, PrivatePorts, launcher_args
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import LOOPBACK, ServerSettings
from tritonkit.server.watchdog import (
    EMBEDDED_STUB_BACKENDS,
    NATIVE_STUB_BACKENDS,
    HealthFile,
    Watchdog,
    clear_orphans,
)
from tritonkit.steps import heartbeat

READY_TIMEOUT_S = 120  # loading every model on 2 shared cores; a load error ends the wait sooner
STOP_GRACE_S = EXIT_TIMEOUT_S + 5  # tritonserver finishes in-flight requests first; then SIGKILL
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
LOG_TAIL_CHARS = 6000
WATCHDOG_GAVE_UP = 3  # the launcher's exit code when a model or tritonserver crash-loops (see watchdog.py)
MAX_SERVER_RESTARTS = 3  # tritonserver restarts in SERVER_RESTART_WINDOW_S before giving up
SERVER_RESTART_WINDOW_S = 600
SERVER_RESTART_BACKOFF_S = 2.0  # before the second restart in the window; doubles after


class NotExported(RuntimeError):
    """A repository names a model that has no version folder yet; the message names them and the fix."""


class TritonServer:
    """Starts, waits for, logs and stops one tritonserver (and its front: guard.py). A context manager.

    Args:
        settings: ports, host, admin key, repositories, model control, guard.
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
        self._restarts: list[float] = []
        self.health_file: Path | None = None
        if settings.watchdog and not launcher:
            self.health_file = Path(tempfile.mkdtemp(prefix="tritonkit-health-")) / "health.json"

    # -- what runs ------------------------------------------------------------------------------

    def commands(self) -> list[list[str]]:
        """The argv of each child, in start order (tritonserver or the launcher first)."""
        if self.launcher:
            return [self._launcher_command()]
        directory = self.backend_directory or embedded.default_backend_directory()
        commands = [embedded.embedded_command(self.settings, directory, self._private)]
        if self._private is not None:
            commands.append(embedded.guard_command(self.settings, self._private, self.health_file))
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
            _sweep_shared_memory("before starting tritonserver")
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
        """``first``: the first of ``commands()``, tritonserver itself when not ``launcher``."""
        behind_front = first and self._private is not None
        return spawn(argv, env=env, cwd=self._cwd(), output=output, cpus=self.cpus, batch=behind_front)

    @staticmethod
    def _cwd() -> str | None:
        from tritonkit import paths

        try:
            return str(paths.root())
        except paths.ProjectNotFound:
            return None

    def wait_until_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Polls readiness until ``timeout_s``; returns the seconds waited.

        Raises:
            ServerNotReady: the deadline passed or a child exited first (the message ends with the log tail).
        """
        try:
            waited = wait_until_ready(self.settings.http_url, timeout_s, alive=self.alive)
        except ServerNotReady as exc:
            raise ServerNotReady(f"{exc}{self._log_tail()}") from None
        if self.health_file is not None and self.watchdog is None:
            self.watchdog = Watchdog(server_pid=self.pid, http_url=self._direct_http_url(),
                                     admin_key=self.settings.admin_key, health=HealthFile(self.health_file),
                                     heartbeats=self._heartbeats(), hang_s=self.settings.hang_s,
                                     stub_backends=NATIVE_STUB_BACKENDS if embedded.native_binary()
                                     else EMBEDDED_STUB_BACKENDS)
            self.watchdog.start()
        return waited

    def _direct_http_url(self) -> str:
        """tritonserver's own HTTP endpoint: behind the guard when there is one."""
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

        With the watchdog, tritonserver is restarted when it dies or when a reload failed (``restart``), up to
        ``MAX_SERVER_RESTARTS`` in ``SERVER_RESTART_WINDOW_S``; then, or when the watchdog gave up on a model,
        everything stops with ``WATCHDOG_GAVE_UP``. When the guard exits first, tritonserver is stopped too and
        the guard's code (or 1) is returned.
        """
        while True:
            while self.alive():
                if self.watchdog is not None and self.watchdog.health.gave_up:
                    print("error: the watchdog gave up on a crash loop; stopping so the server is restarted",
                          file=sys.stderr, flush=True)
                    self.stop()
                    return WATCHDOG_GAVE_UP
                if self.watchdog is not None and self.watchdog.restart_wanted:
                    break
                time.sleep(0.5)
            exited = next((process for process in self.processes if process.poll() is not None), None)
            if self.watchdog is None or exited not in (None, self.processes[0]):
                break
            why = self.watchdog.restart_wanted or f"tritonserver exited with code {self.processes[0].poll()}"
            if not self.restart(why):
                self.stop()
                return WATCHDOG_GAVE_UP
        exited = next(process for process in self.processes if process.poll() is not None)
        code = self.stop()
        if exited is self.processes[0]:
            return code
        print(f"error: the front exited ({exited.returncode}); tritonserver was stopped too", file=sys.stderr)
        return exited.returncode or 1

    def restart(self, why: str) -> bool:
        """The watchdog's last resort: a fresh tritonserver behind the same guard; False when it must give up.

        Readiness answers 503 and liveness 200 meanwhile. Restarts back off (``SERVER_RESTART_BACKOFF_S``
        doubling) and are counted in ``tritonkit_tritonserver_restarts_total``.
        """
        assert self.watchdog is not None
        health, now = self.watchdog.health, time.monotonic()
        self._restarts = [at for at in self._restarts if now - at < SERVER_RESTART_WINDOW_S]
        if len(self._restarts) >= MAX_SERVER_RESTARTS:
            print(f"error: {why}; tritonserver was already restarted {len(self._restarts)} times in "
                  f"{SERVER_RESTART_WINDOW_S} s: giving up so the orchestrator restarts the whole server",
                  file=sys.stderr, flush=True)
            health.gave_up = True
            health.write()
            return False
        health.restarting, health.down = True, health.down | {"tritonserver"}
        health.write()
        print(f"watchdog: {why}; restarting tritonserver (restart {len(self._restarts) + 1} in "
              f"{SERVER_RESTART_WINDOW_S} s)", file=sys.stderr, flush=True)
        if self._restarts:
            time.sleep(SERVER_RESTART_BACKOFF_S * 2 ** (len(self._restarts) - 1))
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
            wait_until_ready(self._direct_http_url(), READY_TIMEOUT_S, alive=lambda: self.processes[0].poll() is None)
        except ServerNotReady as exc:
            print(f"error: the restarted tritonserver did not become ready: {exc}", file=sys.stderr, flush=True)
            return self.restart("the restarted tritonserver did not become ready")
        self.watchdog.server_pid = self.processes[0].pid
        self.watchdog.restart_wanted = None
        health.server_restarts += 1
        health.restarting, health.down = False, set()  # every model was loaded afresh
        health.write()
        print(f"watchdog: tritonserver restarted (pid {self.processes[0].pid}) and ready", file=sys.stderr, flush=True)
        return True

    def stop(self, timeout_s: float = STOP_GRACE_S) -> int:
        """Stops the children, last started first, and returns the first one's exit code.

        The guard goes first: it finishes its in-flight requests and closes its pooled connections, which
        tritonserver would otherwise wait on. Each child gets SIGINT and ``timeout_s``, then SIGKILL.
        """
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
        if codes and codes[-1] == 1 and self._replaced_instances():
            # Triton 2.51 never finishes unloading an instance whose stub died: after waiting for the in-flight
            # requests, it waits out --exit-timeout-secs for those instances too and exits 1.
            print(f"tritonserver waited its {EXIT_TIMEOUT_S} s exit timeout for {self._replaced_instances()} model "
                  "instance(s) whose dead stub the watchdog replaced (Triton 2.51 cannot unload them; it waits "
                  "for in-flight requests before that)", file=sys.stderr, flush=True)
            return 0
        return codes[-1] if codes else 0

    def _clear_orphans(self, server: subprocess.Popen) -> None:
        """Stubs and shared memory a killed tritonserver left behind (none after a clean exit)."""
        if self.launcher:
            return  # the launcher's own TritonServer clears them
        cleared = clear_orphans(server.pid)
        if cleared:
            print(f"cleared {cleared} stub(s) and their shared memory left by tritonserver (pid {server.pid})",
                  file=sys.stderr, flush=True)

    def _replaced_instances(self) -> int:
        return sum(self.watchdog.health.recoveries.values()) if self.watchdog is not None else 0

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_) -> None:
        self.stop()

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
        log = self.log()
        return f"\n----- {self.log_path} (tail) -----\n{log[-LOG_TAIL_CHARS:]}" if log else ""


def missing_versions(repositories) -> list[str]:
    """Models whose folder has a config.pbtxt but no numeric version folder yet (not exported)."""
    missing = []
    for repository in repositories:
        for config in sorted(Path(repository).glob("*/config.pbtxt")):
            model = config.parent
            if not any(child.is_dir() and child.name.isdigit() for child in model.iterdir()):
                missing.append(f"{model.name} ({model})")
    return missing


def spawn(argv: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None, output=None,
          cpus: set[int] | None = None, batch: bool = False) -> subprocess.Popen:
    """Starts ``argv`` in a session of its own, stopped (SIGTERM) when the calling thread dies.

    Args:
        output: a binary file for stdout and stderr together; ``None`` leaves them on this terminal.
        cpus: CPU numbers to pin the child to; ``None`` leaves it free.
        batch: run it (and what it forks) under ``SCHED_BATCH``: it never preempts others when it wakes.
    """

    def before_exec() -> None:  # runs in the child
        _stop_with_parent()
        if cpus:
            os.sched_setaffinity(0, cpus)
        if batch:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))

    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=output,
                            stderr=subprocess.STDOUT if output is not None else None,
                            start_new_session=True,
                            preexec_fn=before_exec)  # noqa: PLW1509 - prctl(PR_SET_PDEATHSIG) must run in the child before exec


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM when the owning thread dies, SIGKILL included (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not glibc/Linux: the owner's stop() is the only guarantee there
        pass


def _sweep_shared_memory(when: str) -> None:
    from tritonkit.server import shm

    swept = shm.sweep()
    if swept:
        print(f"[tritonkit] removed {len(swept)} shared-memory region(s) no process maps (left by killed stubs) "
              f"{when}", file=sys.stderr, flush=True)
