"""The generated HAProxy and Prometheus configs of `make serve-replicas` agree with the Kubernetes deployment."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tritonkit import paths, tools
from tritonkit.deploy import replicas
from tritonkit.deploy.replicas import Layout, haproxy_config, prometheus_config
from tritonkit.server.errors import SettingsError

KEY = "unit-tests-admin-key-0123"
KUBERNETES = paths.root() / "deploy" / "kubernetes"


@pytest.fixture
def layout() -> Layout:
    return Layout.make(3, KEY, http_port=18000, grpc_port=18001, stats_port=18404, prometheus_port=19090)


def test_haproxy_checks_the_path_the_kubernetes_readiness_probe_calls(layout):
    deployment = yaml.safe_load((KUBERNETES / "base" / "deployment.yaml").read_text())
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    assert f"option httpchk GET {probe}" in haproxy_config(layout)


def test_every_replica_is_in_both_backends_and_grpc_follows_the_http_check(layout):
    config = haproxy_config(layout)
    for index, replica in enumerate(layout.replicas):
        name = f"replica-{index}"
        assert re.search(rf"server {name} 127\.0\.0\.1:{replica.http_port} check\b", config)
        assert f"server {name} 127.0.0.1:{replica.grpc_port} proto h2 track replicas_http/{name}" in config
    assert "bind 127.0.0.1:18000\n" in config and "bind 127.0.0.1:18001 proto h2\n" in config
    assert "0.0.0.0" not in config, "loopback only"


def test_prometheus_evaluates_the_autoscalers_own_rule_file_with_a_pod_per_replica(layout):
    rules = KUBERNETES / "monitoring" / "tritonkit-rules.yml"
    assert rules.name in (KUBERNETES / "monitoring" / "kustomization.yaml").read_text()
    config = json.loads(prometheus_config(layout, rules).split("\n", 1)[1])
    assert config["rule_files"] == [str(rules.resolve())]
    targets = config["scrape_configs"][0]["static_configs"]
    assert [target["labels"]["pod"] for target in targets] == ["replica-0", "replica-1", "replica-2"]
    assert [target["targets"] for target in targets] == [[f"127.0.0.1:{r.metrics_port}"] for r in layout.replicas]


def test_every_replica_gets_ports_of_its_own_and_the_same_admin_key(layout):
    ports = [port for r in layout.replicas for port in (r.http_port, r.grpc_port, r.metrics_port)]
    assert len(set(ports)) == len(ports) and not {18000, 18001, 18404, 19090} & set(ports)
    assert {r.admin_key for r in layout.replicas} == {KEY}


@pytest.mark.parametrize(("count", "ports", "message"), [
    (0, (8000, 8001, 8404, 9090), "at least one replica"),
    (2, (8000, 8000, 8404, 9090), "must differ"),
])
def test_a_bad_layout_is_refused_with_the_fix(count, ports, message):
    http, grpc, stats, prometheus = ports
    with pytest.raises(SettingsError, match=message):
        Layout.make(count, KEY, http_port=http, grpc_port=grpc, stats_port=stats, prometheus_port=prometheus)


def test_a_missing_tool_is_named_with_the_install_command(monkeypatch, tmp_path, layout):
    monkeypatch.setattr(tools.shutil, "which", lambda program: None)
    with pytest.raises(tools.ToolMissing, match=r"haproxy missing: run `make tools` .*apt-get install .*haproxy"):
        replicas.Replicas(layout, tmp_path)


@pytest.mark.parametrize(("cpus", "limit"), [(1, 1.0), (2, 1.5), (8, 7.5)])
def test_each_replica_container_leaves_headroom_for_a_restarting_one(cpus, limit):
    assert replicas.container_cpu_limit(cpus) == limit


def test_replicas_as_containers_get_the_limit_unless_told_otherwise(monkeypatch, tmp_path, layout):
    monkeypatch.setattr(replicas.container, "engine", lambda choice: "podman")
    monkeypatch.setattr(tools.shutil, "which", lambda program: f"/usr/bin/{program}")
    assert replicas.Replicas(layout, tmp_path, containers=True).container_cpus == replicas.container_cpu_limit()
    assert replicas.Replicas(layout, tmp_path, containers=True, container_cpus=1.0).container_cpus == 1.0
