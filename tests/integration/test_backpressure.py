"""Back-pressure: an endpoint that holds all it can refuses at once with a retryable status; the client gets through.

The ``slow`` asset holds each execution for 0.5 s. Here it batches 8 (waiting up to 0.2 s to fill a batch) and its
queue holds 16, which is what the front admits (admission.py: what the queue holds, so that an admitted request
always finds room). Requests beyond get HTTP 503 / gRPC UNAVAILABLE within 50 ms from the front, before tritonserver
sees them; Triton's own queue never refuses one; nothing times out or fails otherwise. The project's configs bound
every model's and step's queue the same way (tests/unit/test_configs.py).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import ASSETS, launch

from tritonkit.client import Client

pytestmark = pytest.mark.integration

QUEUE = 16  # the front's limit: a running batch of 8 and 8 waiting
BATCH = 8
SIMULTANEOUS = 24
REFUSAL_BOUND_MS = 50


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    repository = tmp_path_factory.mktemp("bounded") / "repo"
    shutil.copytree(ASSETS / "slow_repository" / "slow", repository / "slow")
    config = repository / "slow" / "config.pbtxt"
    config.write_text(config.read_text().replace(
        "dynamic_batching { }", "dynamic_batching { max_queue_delay_microseconds: 200000 "
        f"default_queue_policy {{ max_queue_size: {QUEUE} }} }}"))
    launched = launch(tmp_path_factory.mktemp("bounded-log") / "server.log", [repository])
    try:
        launched.wait_until_ready(60)
        yield launched
    finally:
        launched.stop()


def _http(url: str, value: float) -> tuple[int, float, str]:
    body = json.dumps({"inputs": [{"name": "VALUE", "shape": [1, 1], "datatype": "FP32", "data": [value]}]}).encode()
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/v2/models/slow/infer", data=body, method="POST"),
                                    timeout=30) as answer:
            return answer.status, (time.perf_counter() - start) * 1000, ""
    except urllib.error.HTTPError as error:
        return error.code, (time.perf_counter() - start) * 1000, error.read().decode()


def _grpc(url: str, value: float) -> tuple[str, float, str]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    tensor = grpcclient.InferInput("VALUE", [1, 1], "FP32")
    tensor.set_data_from_numpy(np.array([[value]], np.float32))
    start = time.perf_counter()
    try:
        client.infer("slow", [tensor], client_timeout=30)
        return "OK", (time.perf_counter() - start) * 1000, ""
    except Exception as error:  # InferenceServerException: status() is "StatusCode.UNAVAILABLE"
        return str(getattr(error, "status", lambda: "")()), (time.perf_counter() - start) * 1000, str(error)
    finally:
        client.close()


def _slow_counts(metrics_url: str) -> tuple[int, int]:
    """tritonserver's own counts for ``slow``: requests that succeeded, requests it refused or failed."""
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    def total(metric: str) -> int:
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                   if line.startswith(f'{metric}{{') and 'model="slow"' in line)
    return total("nv_inference_request_success"), total("nv_inference_request_failure")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_front_admits_what_the_model_holds_and_refuses_the_rest_before_tritonserver(bounded, protocol):
    # Three waves 0.1 s apart, inside the first batch's 0.5 s: a full batch runs, a full queue waits, and the
    # third wave finds the front at its limit (16 in flight): refused at once, never sent to tritonserver.
    settings = bounded.settings
    call, ok, refused_as = ((lambda i: _http(settings.http_url, float(i))), 200, 503) if protocol == "http" else \
        ((lambda i: _grpc(settings.grpc_url, float(i))), "OK", "StatusCode.UNAVAILABLE")
    succeeded_before, failed_before = _slow_counts(settings.metrics_url)
    with ThreadPoolExecutor(SIMULTANEOUS) as pool:
        waves = []
        for wave in range(3):
            waves.append([pool.submit(call, wave * BATCH + i) for i in range(BATCH)])
            time.sleep(0.1)
        answers = [[future.result() for future in wave] for wave in waves]
    succeeded, failed = _slow_counts(settings.metrics_url)
    refused = [latency for status, latency, error in answers[2] if status == refused_as and "is overloaded" in error]
    print(f"\n{protocol}: waves of {BATCH}, 0.1 s apart: {[[a[0] for a in wave] for wave in answers]}; "
          f"slowest refusal {max(refused, default=0):.0f} ms")
    assert all(status == ok for wave in answers[:2] for status, _, _ in wave), answers  # a batch, then a queue
    assert len(refused) == BATCH, answers[2]  # the front, at its limit
    assert max(refused) < REFUSAL_BOUND_MS
    # What the front refused never reached tritonserver: it counted the 16 it ran, and refused none itself.
    assert (succeeded - succeeded_before, failed - failed_before) == (2 * BATCH, 0)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_client_retries_a_refusal_until_it_gets_through(bounded, protocol):
    url = bounded.settings.http_url if protocol == "http" else bounded.settings.grpc_url
    def call(value: float) -> float:
        with Client(url, protocol=protocol, retries=30, timeout_s=30) as client:  # 24 at once drain in ~1.5 s
            out = client.infer("slow", {"VALUE": np.array([[value]], np.float32)}, outputs=["VALUE_OUT"])
        return float(out["VALUE_OUT"][0, 0])
    with ThreadPoolExecutor(SIMULTANEOUS) as pool:
        values = list(pool.map(call, range(SIMULTANEOUS)))
    assert values == [float(i) for i in range(SIMULTANEOUS)]  # every request answered, after retries


SLOW_CLIENTS = 100  # each holds a connection with a trickle of its body (the issue's case used 400)


def test_slow_clients_hold_no_slot_and_get_408_while_others_are_served(server):
    import socket

    from tritonkit.server.front.http_guard import BODY_TIMEOUT_S

    host, port = "127.0.0.1", server.settings.http_port
    head = (f"POST /v2/models/diabetes_regressor/infer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{").encode()
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            client = socket.create_connection((host, port), timeout=30)
            client.sendall(head)  # the headers and 1 byte of a 100-byte body, then nothing
            slow.append(client)
        time.sleep(0.5)
        body = {"inputs": [{"name": "FEATURES", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]}
        request = urllib.request.Request(f"http://{host}:{port}/v2/models/diabetes_regressor/infer",
                                         data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200  # 503 before: the slow bodies held the model's 8 places
        answer = slow[0].recv(4096).decode(errors="replace")  # waits out the body deadline
        assert answer.startswith("HTTP/1.1 408"), answer[:200]
        assert f"did not arrive within {BODY_TIMEOUT_S:g} s" in answer
    finally:
        for client in slow:
            client.close()
