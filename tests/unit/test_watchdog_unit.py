"""The watchdog's pieces without a server: finding stubs in /proc, the health file, what the front answers, the
events it reports, and how the supervisor applies them."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

from tritonkit.server.health import Health, HealthState
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer
from tritonkit.server.supervisor.procfs import clear_orphans, reread, stubs_of
from tritonkit.server.supervisor.watchdog import (
    CAUSES,
    EMBEDDED_STUB_BACKENDS,
    NATIVE_STUB_BACKENDS,
    Down,
    Recovered,
    Watchdog,
    Watched,
)
from tritonkit.steps.heartbeat import Heartbeat, busy_for


def test_stubs_are_found_under_their_parent_with_model_version_and_state(tmp_path):
    # A stand-in stub: a child whose argv[0] is the stub's name and argv[1] a model file, as Triton starts them.
    model_file = tmp_path / "ensembles" / "minilm_tokenizer" / "1" / "model.py"
    model_file.parent.mkdir(parents=True)
    model_file.write_text("import time\ntime.sleep(30)\n")
    launch = (f"import subprocess, sys, time; subprocess.Popen([{str(tmp_path / 'triton_python_backend_stub')!r}, "
              f"{str(model_file)!r}], executable=sys.executable); time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", launch])
    try:
        deadline = time.monotonic() + 10
        while not (found := stubs_of(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        (stub,) = found
        assert (stub.model, stub.version) == ("minilm_tokenizer", "1") and stub.state in "RS"
        os.kill(stub.pid, signal.SIGSTOP)
        time.sleep(0.2)
        assert stubs_of(parent.pid)[0].state == "T"  # what the watchdog reads as a stopped stub
        # Between full walks the watchdog re-reads the stubs it knows: the state is fresh, another parent's is not its
        assert reread([stub], parent.pid) == [dataclasses.replace(stub, state="T")]
        assert reread([stub], os.getpid()) == []
        os.kill(stub.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while reread([stub], parent.pid)[0].state != "Z" and time.monotonic() < deadline:  # unreaped: a zombie
            time.sleep(0.05)
        assert reread([stub], parent.pid)[0].state == "Z"
    finally:
        parent.kill()
        parent.wait()


def test_the_stubs_a_killed_tritonserver_left_are_killed_and_their_shared_memory_removed(tmp_path):
    # Stand-in stubs as Triton starts them: stub model_file region default_size growth_size parent_pid ...
    model_file = tmp_path / "repository" / "lstm_tokenizer" / "1" / "model.py"
    model_file.parent.mkdir(parents=True)
    model_file.write_text("import time\ntime.sleep(60)\n")
    dead_server, other_server = 2**22 + 17, os.getpid()  # above pid_max: no process has the first pid

    def stub(region: str, parent: int) -> subprocess.Popen:
        (tmp_path / region).write_bytes(b"\0" * 64)
        argv = [str(tmp_path / "triton_python_backend_stub"), str(model_file), region, "1048576", "1048576",
                str(parent), "/opt/tritonserver/backends/python", "0", "lstm_tokenizer_0_0"]
        return subprocess.Popen(argv, executable=sys.executable)

    orphans = [stub(f"triton_python_backend_shm_region_{name}", dead_server) for name in "ab"]
    kept = stub("triton_python_backend_shm_region_kept", other_server)
    try:
        time.sleep(0.3)  # each has exec'd: its command line is the stub's
        assert clear_orphans(dead_server, shm_dir=tmp_path) == 2
        assert [orphan.wait(5) for orphan in orphans] == [-signal.SIGKILL] * 2
        assert kept.poll() is None  # another server's stub is left alone, and so is its region
        assert sorted(path.name for path in tmp_path.glob("triton_*")) == ["triton_python_backend_shm_region_kept"]
        assert clear_orphans(dead_server, shm_dir=tmp_path) == 0
    finally:
        for process in (*orphans, kept):
            process.kill()
            process.wait()


def test_health_file_and_guard_agree_on_what_is_down(tmp_path):
    path = tmp_path / "health.json"
    health = HealthState(path)
    guard = Health(path)
    assert guard.refusal("/v2/health/ready") is None and guard.live() is True
    health.down |= {"minilm_tokenizer", "text_sentiment"}
    health.write()
    assert "minilm_tokenizer" in guard.refusal("/v2/health/ready")
    assert "text_sentiment is recovering" in guard.refusal("/v2/models/text_sentiment/versions/1/ready")
    assert guard.refusal("/v2/models/digit_classifier/ready") is None
    assert guard.live() is True  # down is not dead: only giving up fails liveness
    health.down.clear()
    health.recoveries[("minilm_tokenizer", "died")] += 2
    health.gave_up = True
    health.write()
    assert guard.refusal("/v2/health/ready") is None and guard.live() is False
    assert 'tritonkit_model_recoveries_total{model="minilm_tokenizer",cause="died"} 2' in guard.metrics()
    assert json.loads(path.read_text())["gave_up"] is True


def test_guard_without_a_health_file_forwards_every_health_request():
    guard = Health(None)
    assert guard.refusal("/v2/health/ready") is None and guard.live() is None  # None: tritonserver answers
    assert "tritonkit_model_recoveries_total" in guard.metrics()  # the metric exists at zero


def test_a_busy_mark_shows_how_long_execute_has_run_and_nothing_when_idle(tmp_path):
    beat = Heartbeat(str(tmp_path))
    assert busy_for(tmp_path, os.getpid()) == 0.0
    with beat.busy():
        time.sleep(0.05)
        assert 0.05 <= busy_for(tmp_path, os.getpid()) < 5
    assert busy_for(tmp_path, os.getpid()) == 0.0
    assert busy_for(tmp_path, 999_999_999) == 0.0  # no mark: never called hung



CONFIGS = {  # what tritonserver's /v2/models/<name>/config answers, trimmed to what the watchdog reads
    "minilm_tokenizer": {"backend": "python", "instance_group": [{"count": 1}]},
    "minilm_sentiment": {"backend": "onnxruntime", "platform": "onnxruntime_onnx", "instance_group": [{"count": 2}]},
    "text_sentiment": {"platform": "ensemble", "ensemble_scheduling": {"step": [
        {"model_name": "minilm_tokenizer"}, {"model_name": "minilm_sentiment"}]}},
}


def _learned(stub_backends):
    events = []
    watchdog = Watchdog(server_pid=os.getpid(), http_url="http://unused", admin_key="k" * 20, emit=events.append,
                        stub_backends=stub_backends)
    watchdog._request = lambda path, body, timeout_s=10.0: (  # the one call that needs a server
        [{"name": name, "version": "1", "state": "READY"} for name in CONFIGS] if path == "/v2/repository/index"
        else CONFIGS[path.split("/")[3]])
    watchdog._ready_versions()
    return watchdog, events


def test_the_watchdog_announces_every_model_it_watches_and_nothing_else():
    watchdog, events = _learned(EMBEDDED_STUB_BACKENDS)
    assert [(type(e), e.model) for e in events] == [(Watched, "minilm_sentiment"), (Watched, "minilm_tokenizer")]
    assert [watchdog._instances[m] for m in CONFIGS] == [1, 2, 0]
    assert watchdog._dependents == {"minilm_tokenizer": {"text_sentiment"}, "minilm_sentiment": {"text_sentiment"}}


def test_a_native_tritonserver_runs_onnx_models_in_process_so_only_python_models_are_watched():
    watchdog, events = _learned(NATIVE_STUB_BACKENDS)
    assert [e.model for e in events] == ["minilm_tokenizer"]
    assert [watchdog._instances[m] for m in CONFIGS] == [1, 0, 0]


class _Running:
    """Stands for tritonserver's Popen in the supervisor's bookkeeping: only its pid is read here."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self):
        return None


def test_the_supervisor_applies_events_to_the_health_the_front_reads_and_drops_a_replaced_servers():
    server = TritonServer(ServerSettings(admin_key="k" * 20, http_guard=False))
    server.processes = [_Running(4242)]
    front = Health(server.health_file)
    for model in ("minilm_tokenizer", "minilm_sentiment"):
        assert server._apply(Watched(4242, model=model)) is None
    # Prometheus sees no increase in a counter series that first appears at 1: the first recovery would be lost.
    for model in ("minilm_tokenizer", "minilm_sentiment"):
        for cause in CAUSES:
            assert f'tritonkit_model_recoveries_total{{model="{model}",cause="{cause}"}} 0' in front.metrics()
    assert 'model="text_sentiment"' not in front.metrics()  # an ensemble has no stub
    affected = frozenset({"minilm_tokenizer", "text_sentiment"})
    server._apply(Down(4242, model="minilm_tokenizer", cause="died", models=affected))
    assert front.down() == ["minilm_tokenizer", "text_sentiment"]
    server._apply(Recovered(4241, model="minilm_tokenizer", cause="died", models=affected))  # an older server's
    assert front.down() == ["minilm_tokenizer", "text_sentiment"]
    server._apply(Recovered(4242, model="minilm_tokenizer", cause="died", models=affected))
    assert front.down() == [] and front.live() is True
    assert 'tritonkit_model_recoveries_total{model="minilm_tokenizer",cause="died"} 1' in front.metrics()
