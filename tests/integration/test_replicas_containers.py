"""The replicas of `make serve-replicas` as containers (issue #18): the failover drill passes that way too.

Each replica is the image (built on the local base with podman, as tests/integration/test_container.py does) run by
``python -m tritonkit.server --container``, behind the same HAProxy and Prometheus. Skips with the reason where
podman, HAProxy or Prometheus cannot be installed. Bounded: about 2 minutes.
"""

from __future__ import annotations

import pytest
from conftest import ADMIN_KEY
from test_container import _install_podman

from tritonkit.deploy import drill
from tritonkit.deploy.replicas import Layout, Replicas, install_tools
from tritonkit.server.ports import free_ports

READY_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def container_replicas(tmp_path_factory) -> Replicas:
    why = install_tools() or _install_podman()
    if why is not None:
        pytest.skip(why)
    http, grpc, stats, prometheus = free_ports(4)
    layout = Layout.make(2, ADMIN_KEY, http_port=http, grpc_port=grpc, stats_port=stats, prometheus_port=prometheus)
    run_dir = tmp_path_factory.mktemp("container-replicas")
    started = Replicas(layout, run_dir, containers=True, engine="podman").start()
    try:
        started.wait_until_ready(READY_TIMEOUT_S)
    except BaseException:
        started.stop()
        raise
    yield started
    assert started.stop() == 0, f"a replica's container exited badly on SIGTERM; logs in {run_dir}"


def test_a_killed_tritonserver_in_a_replica_container_loses_no_request_and_rejoins(container_replicas):
    result = drill.failover(container_replicas)
    print(f"\nfailover (containers): {result}")
    assert result["errors"] == {}, result["failures"]
    assert result["out_after_s"] is not None and result["rejoined_after_s"] is not None
    assert result["served_while_out"][1] > 0 and result["served_after_rejoin"][0] > 0
    assert result["restarted"]
