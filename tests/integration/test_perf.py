"""make perf end to end: Triton's own perf_analyzer 2.51 (``make tools`` installs it into .triton/perf/; so does this
test's setup) against the real server, over HTTP and gRPC, with the real inputs and the admin key; its figures land
in PERF.md."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tritonkit import paths, tools
from tritonkit.bench import perf

pytestmark = pytest.mark.integration


def test_perf_analyzer_measures_an_endpoint_over_both_protocols(server, tmp_path):
    assert tools.install(["perf-analyzer"]) is None  # test setup: pip into its own venv
    settings = server.settings
    env = {**os.environ, "TRITON_ADMIN_KEY": settings.admin_key, "HTTP_PORT": str(settings.http_port),
           "GRPC_PORT": str(settings.grpc_port)}
    done = subprocess.run([sys.executable, "-m", "tritonkit.bench.perf", "--endpoint", "diabetes_regressor",
                           "--endpoint", "digit_classifier", "--endpoint", "movie_recommendations",  # ints, BYTES
                           "--concurrency", "2", "--interval-ms", "500",
                           "--out", str(tmp_path)], env=env, cwd=paths.root(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for endpoint in ("diabetes_regressor", "digit_classifier", "movie_recommendations"):
        for protocol in perf.PROTOCOLS:
            rows = perf.read_csv(tmp_path / f"{endpoint}-{protocol}.csv")
            assert [row["concurrency"] for row in rows] == [2] and rows[0]["throughput"] > 0, (endpoint, protocol)
            assert f"| `{endpoint}` | {protocol} | 2 |" in (tmp_path / "PERF.md").read_text()


def test_perf_without_perf_analyzer_names_make_tools(server, tmp_path):
    env = {**os.environ, "TRITON_ADMIN_KEY": server.settings.admin_key, "HTTP_PORT": str(server.settings.http_port),
           "GRPC_PORT": str(server.settings.grpc_port), "TRITONKIT_RUNTIME": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-m", "tritonkit.bench.perf", "--endpoint", "diabetes_regressor",
                           "--out", str(tmp_path)], env=env, cwd=paths.root(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "perf-analyzer is not installed" in done.stderr and "`make tools`" in done.stderr
    assert not (tmp_path / "empty" / "perf").exists()  # nothing was installed at run time


def test_perf_without_the_admin_key_says_what_to_set(server, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TRITON_ADMIN_KEY"}
    done = subprocess.run([sys.executable, "-m", "tritonkit.bench.perf", "--out", str(tmp_path)], env=env,
                          cwd=paths.root(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "TRITON_ADMIN_KEY" in done.stderr
