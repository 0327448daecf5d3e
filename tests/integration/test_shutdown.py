"""Clean shutdown under load: SIGTERM to the launcher with requests in flight loses none of them.

The ``slow`` asset holds every execution for 0.5 s, so requests are really in flight when the signal lands. On
SIGTERM readiness must turn false at once (the guard stops accepting connections first), every request already
in flight must complete with 200, new requests must be refused, and the launcher must exit 0 within the timeout.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ASSETS, launch

from tritonkit.server.command import EXIT_TIMEOUT_S

pytestmark = pytest.mark.integration

IN_FLIGHT = 16


def _infer(url: str, value: float) -> int:
    body = json.dumps({"inputs": [{"name": "VALUE", "shape": [1, 1], "datatype": "FP32", "data": [value]}]}).encode()
    request = urllib.request.Request(f"{url}/v2/models/slow/infer", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0  # refused or dropped


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def test_sigterm_under_load_completes_every_in_flight_request(tmp_path):
    shutil.copytree(ASSETS / "slow_repository" / "slow", tmp_path / "repo" / "slow")
    launched = launch(tmp_path / "server.log", [tmp_path / "repo"])
    try:
        launched.wait_until_ready(60)
        launched.wait_for_log("tritonserver ready", 30)
        url = launched.settings.http_url
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            in_flight = [pool.submit(_infer, url, float(i)) for i in range(IN_FLIGHT)]
            time.sleep(0.3)  # every request sent; the first batch is executing, the rest queue behind it
            signalled = time.monotonic()
            launched.processes[0].send_signal(signal.SIGTERM)
            time.sleep(0.2)
            ready_after = _ready(url)
            late = _infer(url, -1.0)
            codes = [future.result(timeout=60) for future in in_flight]
        code = launched.processes[0].wait(EXIT_TIMEOUT_S + 20)
        took_s = time.monotonic() - signalled
    finally:
        launched.stop()
    print(f"\nSIGTERM with {IN_FLIGHT} in flight: {codes.count(200)} completed, new request got {late}, "
          f"readiness {'200' if ready_after else 'refused'} 0.2 s after, exit {code} after {took_s:.1f} s")
    assert codes == [200] * IN_FLIGHT, codes
    assert not ready_after and late != 200
    assert code == 0 and took_s < EXIT_TIMEOUT_S + 5
    assert "stopping tritonserver" in launched.log()
