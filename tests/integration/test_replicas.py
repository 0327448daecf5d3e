"""Two replicas behind a real HAProxy, scraped by a real Prometheus (issue #13), as `make serve-replicas` runs them.

HAProxy and Prometheus come from Debian's packages; the module installs them where it can (root with apt-get, as in
CI) and otherwise skips with the reason. Bounded: about 5 minutes, most of it the recording rule's 1-minute rate()
window draining at idle.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import running_replicas

from tritonkit import paths, tools
from tritonkit.deploy import drill
from tritonkit.deploy.replicas import Replicas, query
from tritonkit.server.supervisor.procfs import stubs_of, tritonserver_of

DASHBOARD = paths.root() / "deploy" / "kubernetes" / "monitoring" / "grafana-dashboard.json"
READY_TIMEOUT_S = 300  # every model loads in each replica, on 2 cores shared with the session server


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> Iterator[Replicas]:
    why = tools.install(["haproxy", "prometheus"])  # test setup: apt-get as root, else a skip saying why
    if why is not None:
        pytest.skip(why)
    yield from running_replicas(tmp_path_factory.mktemp("replicas"), READY_TIMEOUT_S)


def test_the_recording_rule_rises_under_load_and_falls_back_to_zero_at_idle(replicas):
    result = drill.recording_rule(replicas)
    print(f"\nrecording rule: {result}")
    assert result["errors"] == {}
    assert set(result["under_load"]) == {"replica-0", "replica-1"}, "the rule must give one series per replica"
    assert all(value > 0 for value in result["under_load"].values()), result
    assert result["idle"] and all(value == 0 for value in result["idle"].values()), result


def test_requests_split_between_the_replicas_within_60_40(replicas):
    result = drill.split(replicas)
    print(f"\nsplit: {result}")
    assert result["errors"] == {}
    assert sum(result["served"]) > 50, "too few answers to judge a split"
    assert all(0.4 <= share <= 0.6 for share in result["shares"]), result


def test_a_killed_tritonserver_behind_the_balancer_loses_no_request_and_rejoins(replicas):
    result = drill.failover(replicas)
    print(f"\nfailover: {result}")
    assert result["errors"] == {}, "every request must succeed (HAProxy's retry, then the client's)"
    assert result["out_after_s"] is not None, "HAProxy never took the killed replica out"
    assert result["served_while_out"][1] > 0, "the survivor must keep serving"
    assert result["restarted"], "the launcher must start a fresh tritonserver"
    assert result["rejoined_after_s"] is not None, "the restarted replica never rejoined"
    assert result["served_after_rejoin"][0] > 0, "the rejoined replica must take requests again"


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _instantiate(expression: str) -> str:
    """Grafana's interval variables, as a 10-minute dashboard would have them."""
    return expression.replace("$__rate_interval", "1m").replace("$__range", "10m")


def test_every_dashboard_expression_runs_against_prometheus_and_finds_data(replicas):
    # A recovery first, counted from 0 (the watchdog starts every watched model's counters there): kill a tokenizer
    # stub of replica 1 and wait until Prometheus sees the increase.
    server = tritonserver_of(replicas.servers[1].pid)
    assert server is not None
    victim = next(stub for stub in stubs_of(server) if stub.model == "minilm_tokenizer")
    os.kill(victim.pid, signal.SIGKILL)
    counted = 'increase(tritonkit_model_recoveries_total{pod="replica-1",model="minilm_tokenizer",cause="died"}[10m])'
    deadline = time.monotonic() + 60
    while not any(float(row["value"][1]) > 0 for row in query(replicas.layout.prometheus_url, counted)):
        assert time.monotonic() < deadline, "the recovery never reached Prometheus as an increase"
        time.sleep(1)
    expressions = _dashboard_expressions()
    assert len(expressions) >= 10
    for expression in expressions:
        assert not re.search(r"\$\w+", _instantiate(expression)), f"an unknown variable in {expression!r}"
        result = query(replicas.layout.prometheus_url, _instantiate(expression))
        assert result, f"no data for the dashboard's {expression!r}"


def test_the_dashboard_uses_only_metrics_that_exist(replicas):
    # A renamed metric would give an empty panel, not an error: every metric name the dashboard names must be one
    # Prometheus has scraped (or the recording rule it evaluates).
    known = set(json.loads(_get(f"{replicas.layout.prometheus_url}/api/v1/label/__name__/values"))["data"])
    named = {name for expression in _dashboard_expressions()
             for name in re.findall(r"\b((?:nv|tritonkit)_[a-z_]+)\b", expression)}
    assert named and named <= known, sorted(named - known)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()
