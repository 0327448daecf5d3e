"""TritonServer, the one owner of tritonserver: nothing it started outlives it, not even a SIGKILL of the owner."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ADMIN_KEY

from tritonkit.client.health import wait_until_ready
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer
from tritonkit.server.supervisor.procfs import child_running, stubs_of, tritonserver_of

pytestmark = pytest.mark.integration

GONE_WITHIN_S = 40  # tritonserver gets SIGTERM and up to --exit-timeout-secs (10 s) to finish; stubs follow it
# A separate owner process: starts the server through TritonServer, says so, then waits to be killed.
OWNER = f"""
import sys, time
from pathlib import Path
from tritonkit.server.supervisor.process import TritonServer
from tritonkit.server.settings import ServerSettings
repository, mode, log, http, grpc, metrics = sys.argv[1:]
settings = ServerSettings(admin_key={ADMIN_KEY!r}, http_port=int(http), grpc_port=int(grpc), metrics_port=int(metrics),
                          repositories=(Path(repository),))
with TritonServer(settings, launcher=mode == "launcher", log_path=Path(log)):
    print("ready", flush=True)
    time.sleep(600)
"""


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its program name, from /proc."""
    found, queue = {}, [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(child) for child in task.read_text().split()]
            except OSError:
                continue
            for child in children:
                found[child] = _program(child)
                queue.append(child)
    return found


def _program(pid: int) -> str:
    try:
        return os.path.basename(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode())
    except OSError:
        return "gone"


def _running(pid: int) -> bool:
    """True unless the process is gone or a zombie (dead, waiting for whoever adopted it to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("mode", ["embedded", "launcher"])
def test_nothing_outlives_an_owner_killed_with_sigkill(mode, test_repository, tmp_path):
    ports = free_ports(3)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(test_repository), mode, str(tmp_path / "server.log"),
                              *map(str, ports)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "ready", (tmp_path / "server.log").read_text()[-4000:]
        started = _descendants(owner.pid)
        assert "tritonserver" in started.values(), started
        assert "triton_python_backend_stub" in started.values(), started  # the lookup model's ORT step
        if mode == "embedded":
            assert any(name.startswith("python") for name in started.values()), "the HTTP guard did not start"
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + GONE_WITHIN_S
        while any(_running(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {pid: name for pid, name in started.items() if _running(pid)}
        assert not left, f"still running {GONE_WITHIN_S} s after the owner's SIGKILL: {left}"
        assert all(_port_is_free(port) for port in ports)
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in _descendants(owner.pid) if owner.poll() is None else {}:
            os.kill(pid, signal.SIGKILL)


def test_owner_stops_the_server_and_its_guard_on_exit(test_repository, tmp_path):
    http, grpc, metrics = free_ports(3)
    settings = ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics,
                              repositories=(test_repository,))
    with TritonServer(settings, log_path=tmp_path / "server.log") as server:
        assert len(server.processes) == 2 and server.alive()  # tritonserver and the HTTP guard
        assert wait_until_ready(settings.http_url, 5) >= 0
        started = {process.pid for process in server.processes}
        for process in server.processes:
            started |= set(_descendants(process.pid))  # the Python stubs
    assert not any(process.poll() is None for process in server.processes)
    assert not [pid for pid in started if _running(pid)]
    assert _port_is_free(http) and _port_is_free(grpc)


def test_owner_raises_with_the_log_tail_when_a_model_fails_to_load(tmp_path, test_repository):
    broken = tmp_path / "repo"
    (broken / "lookup" / "1").mkdir(parents=True)
    (broken / "lookup" / "config.pbtxt").write_text((test_repository / "lookup" / "config.pbtxt").read_text())
    (broken / "lookup" / "1" / "model.onnx").write_bytes(b"not an onnx graph")
    http, grpc, metrics = free_ports(3)
    settings = ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics,
                              repositories=(broken,))
    server = TritonServer(settings, log_path=tmp_path / "server.log")
    with pytest.raises(Exception, match="exited before it was ready(?s:.*)failed to load all models"), server:
        pass
    assert not server.alive()


def policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of ``pid`` (threads that end meanwhile are left out)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.add(os.sched_getscheduler(int(task.name)))
        except ProcessLookupError:
            continue
    return found


def test_tritonserver_and_its_stubs_never_preempt_the_front(server):
    # SCHED_BATCH: a tritonserver thread or stub that wakes does not switch the front out in the middle of its event
    # loop; the front, which answers every request and refusal, keeps the ordinary policy (process.py).
    tritonserver = tritonserver_of(server.pid)
    front = child_running(server.pid, b".server.front\0")  # python -m tritonkit.server.front
    stubs = stubs_of(tritonserver) if tritonserver else []
    assert tritonserver and front and stubs
    assert policies(tritonserver) == {os.SCHED_BATCH}
    assert {stub.model: policies(stub.pid) for stub in stubs} == {stub.model: {os.SCHED_BATCH} for stub in stubs}
    assert policies(front) == {os.SCHED_OTHER}
    assert policies(server.pid) == {os.SCHED_OTHER}  # the launcher and its watchdog
