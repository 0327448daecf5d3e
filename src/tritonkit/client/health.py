"""Readiness polling over Triton's HTTP health endpoint: the one waiter of the client, the launcher, the supervisor,
the benchmark, the replicas and the tests (standard library only, but for the client's error tree)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

from tritonkit.client.errors import ServerNotReady

POLL_INTERVAL_S = 0.2


def is_ready(url: str, *, timeout_s: float = 1.0) -> bool:
    """True when ``GET {url}/v2/health/ready`` answers 200 (strict readiness: every model is ready)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v2/health/ready", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_ready(url: str, timeout_s: float = 60.0, *, alive: Callable[[], bool] | None = None) -> float:
    """Polls until the server at ``url`` (``http://host:port``) is ready; returns the seconds waited.

    Args:
        url: the server's HTTP base URL.
        timeout_s: deadline.
        alive: optional check that the server process still runs; polling stops early when it returns False.

    Raises:
        ServerNotReady: the deadline passed, or ``alive`` reported the process gone.
    """
    start = time.monotonic()
    while True:
        if is_ready(url):
            return time.monotonic() - start
        if alive is not None and not alive():
            raise ServerNotReady(f"the server behind {url} exited before it was ready; see its log above")
        if time.monotonic() - start > timeout_s:
            raise ServerNotReady(f"{url} was not ready after {timeout_s:.0f} s; "
                                 "see the server log for the model that failed")
        time.sleep(POLL_INTERVAL_S)
