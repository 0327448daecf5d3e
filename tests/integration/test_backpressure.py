"""Back-pressure: a full queue refuses at once with a retryable status, and the client's retries get through.

The ``slow`` asset holds each execution for 0.5 s; here its queue holds 4 requests. 24 simultaneous requests:
8 run, 4 wait, the rest must be refused with HTTP 503 / gRPC UNAVAILABLE within 50 ms, never time out or fail
otherwise. The project's configs bound every model's and step's queue the same way (tests/unit/test_configs.py).
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

QUEUE = 4
SIMULTANEOUS = 24
REFUSAL_BOUND_MS = 50


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    repository = tmp_path_factory.mktemp("bounded") / "repo"
    shutil.copytree(ASSETS / "slow_repository" / "slow", repository / "slow")
    config = repository / "slow" / "config.pbtxt"
    config.write_text(config.read_text().replace(
        "dynamic_batching { }", f"dynamic_batching {{ default_queue_policy {{ max_queue_size: {QUEUE} }} }}"))
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


def test_a_full_queue_refuses_at_once_with_503(bounded):
    with ThreadPoolExecutor(SIMULTANEOUS) as pool:
        answers = list(pool.map(lambda i: _http(bounded.settings.http_url, float(i)), range(SIMULTANEOUS)))
    refused = [latency for status, latency, error in answers if status == 503 and "maximum queue size" in error]
    accepted = [status for status, _, _ in answers if status == 200]
    print(f"\n{SIMULTANEOUS} at once, queue {QUEUE}: {len(accepted)} accepted, {len(refused)} refused, "
          f"slowest refusal {max(refused, default=0):.0f} ms")
    assert len(accepted) + len(refused) == SIMULTANEOUS  # nothing else: no timeout, no 500
    assert refused and max(refused) < REFUSAL_BOUND_MS


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
