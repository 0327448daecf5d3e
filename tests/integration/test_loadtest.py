"""The locust harness end to end against the real server: a smoke run, a breached SLO, the rollout scenario."""

import json
import subprocess
import sys

import pytest

from tritonkit import paths

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _loadtest(server, tmp_path, *args, timeout_s=240):
    settings = server.settings
    command = [sys.executable, "-m", "tritonkit.loadtest", "--url", settings.http_url,
               "--grpc-port", str(settings.grpc_port), "--metrics-port", str(settings.metrics_port),
               "--results", str(tmp_path), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=paths.root(), timeout=timeout_s)


def test_smoke_run_writes_reports_with_the_servers_view(server, tmp_path):
    done = _loadtest(server, tmp_path, "--run-time", "12", "--users", "4")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("locust_stats.csv", "report.html", "endpoints.json", "server.json", "summary.md"):
        assert (tmp_path / name).is_file(), name
    client_side = json.loads((tmp_path / "endpoints.json").read_text())["endpoints"]
    server_side = json.loads((tmp_path / "server.json").read_text())
    assert client_side["text_sentiment"]["num_requests"] > 0 and client_side["text_sentiment"]["num_failures"] == 0
    assert server_side["text_sentiment"]["success"] > 0 and server_side["minilm_sentiment"]["avg_compute_ms"] > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "| `text_sentiment` |" in summary and "Load generator CPU" in summary and "SLOs: all met." in summary


def test_grpc_focused_run_with_a_step_shape(server, tmp_path):
    done = _loadtest(server, tmp_path, "--run-time", "8", "--users", "4", "--protocol", "grpc", "--user", "DigitUser",
                     "--shape", "step")
    assert done.returncode == 0, done.stdout[-3000:]
    endpoints = json.loads((tmp_path / "endpoints.json").read_text())["endpoints"]
    assert list(endpoints) == ["digit_classifier"] and endpoints["digit_classifier"]["protocol"] == "grpc"


def test_tight_slo_makes_the_run_fail_and_names_the_endpoint(server, tmp_path):
    tight = tmp_path / "slo.json"
    tight.write_text(json.dumps({"text_sentiment": {"max_failure_ratio": 0.0, "max_p95_ms": 0.01}}))
    done = _loadtest(server, tmp_path, "--run-time", "6", "--users", "2", "--user", "SentimentUser",
                     "--slo", str(tight))
    assert done.returncode == 1
    assert "SLO BREACHED: text_sentiment: p95" in done.stdout
    assert "above the SLO 0 ms" in (tmp_path / "summary.md").read_text()


def test_rollout_under_load_reports_zero_failed_requests(server, tmp_path):
    done = _loadtest(server, tmp_path, "--scenario", "rollout", "--run-time", "12", "--users", "4")
    assert done.returncode == 0, done.stdout[-3000:]
    report = json.loads((tmp_path / "rollout.json").read_text())
    assert report["requests"] > 0 and report["failed_requests"] == 0
    assert (report["versions_before"], report["versions_after"]) == (["1"], ["2"])
    assert "rollout under load: 0 failed of" in done.stdout
