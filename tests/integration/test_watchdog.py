"""Faults caused for real: a stub killed or stopped under traffic is reloaded, and health tells the truth meanwhile.

Each case kills (SIGKILL) or stops (SIGSTOP) one stub of the session server while a client sends requests to the
public endpoint that uses it, and polls readiness over HTTP and gRPC. Targets (issue #12): after a kill no request
fails later than 5 s after it, after a stop 15 s; readiness says not ready on both protocols while the model is
down; the recovery is counted on the metrics port, next to Triton's own metrics.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from conftest import READY_TIMEOUT_S, launch

from tritonkit.server.supervisor.procfs import orphans_of, stubs_of, tritonserver_of

pytestmark = pytest.mark.integration

TRAFFIC_S = 20  # after the fault; every request of the run is bounded by this and REQUEST_TIMEOUT_S
REQUEST_TIMEOUT_S = 10
CASES = [  # (stub's model, endpoint, signal, the fault's bound)
    ("minilm_tokenizer", "text_sentiment", signal.SIGKILL, 5.0),  # a pre-processing step
    ("minilm_sentiment", "text_sentiment", signal.SIGKILL, 5.0),  # an ONNX model in the Python ORT backend
    ("lstm_sentiment_classifier", "lstm_sentiment", signal.SIGKILL, 5.0),  # the last step: labels in its graph
    ("lstm_tokenizer", "lstm_sentiment", signal.SIGSTOP, 15.0),  # a hung stub
]


def _tritonserver_pid(launcher_pid: int) -> int:
    pid = tritonserver_of(launcher_pid)
    assert pid is not None, f"no tritonserver under the launcher {launcher_pid}"
    return pid


def _status(url: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, TimeoutError):
        return 0  # no answer in time: a failure too


def _text_request(text: str) -> bytes:
    return json.dumps({"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]}]}).encode()


def _grpc_stuck_answers(client) -> bool:
    """One gRPC inference of the ``stuck`` model (text "hello") through the front: did it succeed?"""
    text = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"hello"]], dtype=object))
    try:
        client.infer("stuck", [text], client_timeout=5)
        return True
    except Exception:
        return False


def _recoveries(metrics: str, model: str, cause: str) -> int:
    """The counter's value (every watched model's counters exist from the start, at 0)."""
    match = re.search(rf'^tritonkit_model_recoveries_total{{model="{model}",cause="{cause}"}} (\d+)$', metrics, re.M)
    assert match, f"no recovery counter for {model}/{cause}"
    return int(match.group(1))


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


@pytest.mark.parametrize(("model", "endpoint", "sig", "bound_s"), CASES,
                         ids=[f"{case[0]}-{case[2].name}" for case in CASES])
def test_a_stub_fault_under_traffic_heals_within_its_bound(server, model, endpoint, sig, bound_s):
    base = server.settings.http_url
    infer_url, body = f"{base}/v2/models/{endpoint}/infer", _text_request("The staff were lovely and quick.")
    assert _status(infer_url, body) == 200
    victim = next(s for s in stubs_of(_tritonserver_pid(server.pid)) if s.model == model)
    results, readiness, grpc_readiness, stop = [], [], [], threading.Event()
    grpc = grpcclient.InferenceServerClient(server.settings.grpc_url)

    def poll_readiness():
        while not stop.is_set():
            readiness.append((time.monotonic(), _status(f"{base}/v2/health/ready")))
            grpc_readiness.append((grpc.is_server_ready(client_timeout=REQUEST_TIMEOUT_S),
                                   grpc.is_model_ready(endpoint, client_timeout=REQUEST_TIMEOUT_S)))
            time.sleep(0.1)

    poller = threading.Thread(target=poll_readiness)
    poller.start()
    fault_at = time.monotonic()
    os.kill(victim.pid, sig)
    try:
        while time.monotonic() - fault_at < TRAFFIC_S:
            results.append((time.monotonic() - fault_at, _status(infer_url, body)))
    finally:
        stop.set()
        poller.join()
    failures = [(round(at, 2), code) for at, code in results if code != 200]
    print(f"\n{model} {sig.name}: {len(results)} requests, {len(failures)} failed, last failure at "
          f"{failures[-1][0] if failures else '-'} s after the fault (bound {bound_s} s)")
    assert all(at <= bound_s for at, _ in failures), failures
    assert results[-1][1] == 200 and _status(f"{base}/v2/health/ready") == 200
    if failures:  # readiness said so, on both protocols, while the endpoint could not answer
        assert any(code == 503 for _, code in readiness), "requests failed while readiness stayed 200"
        assert (False, False) in grpc_readiness, "requests failed while gRPC ServerReady/ModelReady stayed true"
    assert grpc.is_server_ready() and grpc.is_model_ready(endpoint)
    cause = "stopped" if sig == signal.SIGSTOP else "died"
    metrics = _metrics(server.settings.metrics_url)
    assert _recoveries(metrics, model, cause) >= 1
    assert f'nv_inference_count{{model="{endpoint}",version="1"}}' in metrics  # one scrape: Triton's and ours


def test_a_stub_stuck_in_execute_is_found_by_its_busy_mark_and_reloaded(server):
    # The `stuck` asset is a BatchStep, like every real step: its execute is marked busy (tritonkit.steps.heartbeat).
    base, hang_s = server.settings.http_url, server.settings.hang_s
    infer_url = f"{base}/v2/models/stuck/infer"
    assert _status(infer_url, _text_request("hello")) == 200
    readiness, stop = [], threading.Event()

    def poll_readiness():
        while not stop.is_set():
            readiness.append(_status(f"{base}/v2/models/stuck/ready"))
            time.sleep(0.2)

    poller = threading.Thread(target=poll_readiness)
    poller.start()
    fault_at = time.monotonic()
    threading.Thread(target=_status, args=(infer_url, _text_request("hang")), daemon=True).start()
    results = []
    try:
        while time.monotonic() - fault_at < hang_s + 10:
            results.append((time.monotonic() - fault_at, _status(infer_url, _text_request("hello"))))
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join()
    failures = [(round(at, 2), code) for at, code in results if code != 200]
    print(f"\nstuck (hung in execute): {len(results)} requests, {len(failures)} failed, last failure sent at "
          f"{failures[-1][0] if failures else '-'} s after the hang (hang bound {hang_s} s)")
    assert failures, "requests behind a hung stub should have waited out their timeout"
    assert all(at <= hang_s + 5 for at, _ in failures), failures
    assert results[-1][1] == 200 and 503 in readiness
    assert _recoveries(_metrics(server.settings.metrics_url), "stuck", "hung") >= 1


def _region(stub_pid: int) -> str:
    """A stub's shared-memory region: the third word of its command line."""
    return Path(f"/proc/{stub_pid}/cmdline").read_bytes().split(b"\0")[2].decode()


def test_a_killed_tritonserver_is_restarted_behind_the_same_ports(tmp_path, test_repository):
    # The last resort: tritonserver itself died (or a reload failed). The launcher starts a fresh one behind the same
    # guard; readiness answers 503 and liveness 200 meanwhile, so an orchestrator waits instead of killing the pod.
    launched = launch(tmp_path / "server.log", [test_repository])
    try:
        launched.wait_until_ready(READY_TIMEOUT_S)
        launched.wait_for_log("tritonserver ready", 30)
        base, body = launched.settings.http_url, _text_request("hello")
        infer_url = f"{base}/v2/models/stuck/infer"
        assert _status(infer_url, body) == 200
        grpc = grpcclient.InferenceServerClient(launched.settings.grpc_url)
        old = _tritonserver_pid(launched.pid)
        regions = [Path("/dev/shm") / _region(stub.pid) for stub in stubs_of(old)]
        assert regions and all(region.exists() for region in regions)
        os.kill(old, signal.SIGKILL)
        killed_at, probes = time.monotonic(), []
        while time.monotonic() - killed_at < READY_TIMEOUT_S:
            probes.append((_status(f"{base}/v2/health/ready"), _status(f"{base}/v2/health/live")))
            if probes[-1][0] == 200 and _status(infer_url, body) == 200:
                break
            _grpc_stuck_answers(grpc)  # gRPC traffic during the outage, as clients keep sending
            time.sleep(0.2)
        back_after = time.monotonic() - killed_at
        print(f"\ntritonserver kill -9: serving again {back_after:.1f} s later; probes (ready, live): "
              f"{sorted(set(probes))}")
        assert probes[-1][0] == 200, launched.log()[-3000:]
        assert (503, 200) in probes and all(live == 200 for _, live in probes)
        assert _tritonserver_pid(launched.pid) != old
        assert os.sched_getscheduler(_tritonserver_pid(launched.pid)) == os.SCHED_BATCH  # as the first (process.py)
        # The killed tritonserver's stubs did not outlive it, and their shared memory is gone (it leaked before).
        assert orphans_of(old) == {} and not [region for region in regions if region.exists()]
        assert "cleared" in launched.log()
        assert "tritonkit_tritonserver_restarts_total 1" in _metrics(launched.settings.metrics_url)
        # gRPC answers as soon as readiness does: the front's channel to tritonserver does not sit out a long
        # reconnect backoff (gRPC's default grows past the restart's few seconds).
        ready_at = time.monotonic()
        while not _grpc_stuck_answers(grpc) and time.monotonic() - ready_at < 10:
            time.sleep(0.05)
        grpc.close()
        grpc_after = time.monotonic() - ready_at
        assert grpc_after <= 1.0, f"gRPC inference failed for {grpc_after:.1f} s after readiness was 200"
    finally:
        code = launched.stop()
    assert code == 0
