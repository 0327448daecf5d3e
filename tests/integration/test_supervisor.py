"""The supervisor's one thread, raced for real: restarts asked for from every side at once (the watchdog's report,
other threads, tritonserver killed) and all through the restart run once and leave one consistent state; a stop in
the middle of a restart leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tritonkit.client.health import wait_until_ready
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer
from tritonkit.server.supervisor.procfs import children_of, orphans_of
from tritonkit.server.supervisor.watchdog import RestartWanted

pytestmark = pytest.mark.integration
ADMIN_KEY = "supervisor-test-key-0123456789"
ASKERS = 10  # threads that ask at the same instant: one kills tritonserver, one reports as the watchdog does
SETTLE_S = 3.0  # after the restart: a second restart queued by the race would have begun by now


def _settings(test_repository) -> ServerSettings:
    http, grpc, metrics = free_ports(3)
    return ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics,
                          repositories=(test_repository,))


def _health(server: TritonServer) -> dict:
    return json.loads(server.health_file.read_text())


def _tritonservers_of_this_process() -> list[int]:
    found = []
    for pid in children_of(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"/tritonserver"):
                found.append(pid)
        except OSError:
            continue
    return found


def _lookup(settings: ServerSettings) -> int:
    body = {"inputs": [{"name": "INDEX", "shape": [1, 1], "datatype": "INT64", "data": [3]}]}
    request = urllib.request.Request(f"{settings.http_url}/v2/models/lookup/infer", data=json.dumps(body).encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status


def test_restarts_asked_from_every_side_at_once_run_once_and_leave_a_consistent_state(test_repository, tmp_path):
    settings = _settings(test_repository)
    with TritonServer(settings, log_path=tmp_path / "server.log") as server:
        old = server.pid
        barrier = threading.Barrier(ASKERS)

        def ask(index: int) -> None:
            barrier.wait()
            if index == 0:
                os.kill(old, signal.SIGKILL)  # found by the supervisor thread's own look at its children
            elif index == 1:
                server.watchdog.emit(RestartWanted(old, why="a reload failed"))  # what the watchdog thread sends
            else:
                server.request_restart(f"asker {index}")

        def ask_while_restarting() -> None:  # every 10 ms of the restart, the new tritonserver's start included
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (server.pid == old or _health(server)["restarting"]):
                if _health(server)["restarting"]:
                    server.request_restart("asked during the restart")
                time.sleep(0.01)

        askers = [threading.Thread(target=ask, args=(index,)) for index in range(ASKERS)]
        askers.append(threading.Thread(target=ask_while_restarting))
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join(130)
        wait_until_ready(settings.http_url, 60)
        time.sleep(SETTLE_S)
        health = _health(server)
        assert health["server_restarts"] == 1, server.log()[-3000:]
        assert (health["restarting"], health["down"], health["gave_up"]) == (False, [], False)
        assert server.watchdog.server_pid == server.pid and server.watchdog.is_alive()
        assert _tritonservers_of_this_process() == [server.pid]  # the old one is gone, one new one runs
        assert orphans_of(old) == {}  # the killed server's stubs were cleared
        assert _lookup(settings) == 200
        with urllib.request.urlopen(settings.metrics_url, timeout=10) as answer:
            assert "tritonkit_tritonserver_restarts_total 1" in answer.read().decode()
    assert not server.alive()


def test_a_stop_in_the_middle_of_a_restart_leaves_nothing_running(test_repository, tmp_path):
    settings = _settings(test_repository)
    server = TritonServer(settings, log_path=tmp_path / "server.log").__enter__()
    seen = {server.pid}
    try:
        server.request_restart("the test asks")
        deadline = time.monotonic() + 30
        while not _health(server)["restarting"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _health(server)["restarting"], "the restart never began"
        seen.add(server.pid)
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 60  # the restart gave way; it did not wait out its readiness deadline
    assert not any(process.poll() is None for process in server.processes)
    assert _tritonservers_of_this_process() == []
    assert all(orphans_of(pid) == {} for pid in seen | {server.pid})
