"""``--log-format json`` (LOG_FORMAT=json) for a container's log collector: every line the launcher, the supervisor,
the watchdog, the front and tritonserver itself write is one JSON object with its time, level and component."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
from conftest import launch

from tritonkit.server.supervisor.procfs import stubs_of, tritonserver_of

pytestmark = pytest.mark.integration


def test_every_line_is_json_with_time_level_and_component_tritons_own_included(tmp_path, test_repository):
    log_path = tmp_path / "server.log"
    launched = launch(log_path, [test_repository], LOG_FORMAT="json")
    try:
        launched.wait_until_ready(120)
        launched.wait_for_log("tritonserver ready", 30)
        server_pid = tritonserver_of(launched.pid)
        (stub,) = [stub for stub in stubs_of(server_pid) if stub.model == "stuck"]
        os.kill(stub.pid, signal.SIGKILL)  # the watchdog reports it and its recovery
        launched.wait_for_log("recovered from a died stub", 30)
    finally:
        assert launched.stop() == 0
    records = []
    for number, line in enumerate(log_path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"line {number} of {log_path} is not JSON: {line[:300]}")
    assert all(set(record) == {"time", "level", "component", "message"} for record in records)
    assert all(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S") for record in records)
    components = {record["component"] for record in records}
    assert {"tritonserver", "tritonkit.launcher", "tritonkit.watchdog"} <= components, components
    levels = {(record["component"], record["level"]) for record in records}
    assert ("tritonkit.watchdog", "WARNING") in levels  # the stub died: reloading it
    assert any(record["component"] == "tritonserver" and "Started HTTPService" in record["message"]
               for record in records)


def test_text_lines_carry_time_level_and_component_beside_tritons_own(tmp_path, test_repository):
    log_path = tmp_path / "server.log"
    launched = launch(log_path, [test_repository])
    try:
        launched.wait_until_ready(120)
        launched.wait_for_log("tritonserver ready", 30)
        launched.stop()
    finally:
        launched.stop()
    lines = log_path.read_text().splitlines()
    ours = [line for line in lines if "tritonkit.launcher:" in line or "tritonkit.supervisor:" in line]
    assert ours and all(OURS.match(line) for line in ours), ours
    assert any(OURS.match(line) and "INFO tritonkit.launcher: stopping tritonserver" in line for line in ours), ours
    assert any(TRITONS.match(line) and "Started HTTPService" in line for line in lines)  # glog's, untouched


OURS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) tritonkit\.\w+: ")
TRITONS = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ ")
