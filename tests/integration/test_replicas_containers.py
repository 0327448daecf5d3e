"""The replicas of `make serve-replicas` as containers (issue #18): the failover drill passes that way too.

Each replica is the image (built on the local base with podman, as tests/integration/test_container.py does) run by
``python -m tritonkit.server --container``, behind the same HAProxy and Prometheus, with a CPU limit that leaves a
restarting replica room to load (replicas.RESTART_HEADROOM_CPUS). Without it, the restarted tritonserver mostly
aborted while loading (README "Replicas here": a starved stub, then Triton 2.51's use-after-free). Skips with the
reason where podman, HAProxy or Prometheus cannot be installed. Bounded: about 2 minutes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from conftest import running_replicas

from tritonkit import tools
from tritonkit.deploy import drill
from tritonkit.deploy.replicas import Replicas, container_cpu_limit

READY_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def container_replicas(tmp_path_factory) -> Iterator[Replicas]:
    why = tools.install(["haproxy", "prometheus", "podman"])
    if why is not None:
        pytest.skip(why)
    yield from running_replicas(tmp_path_factory.mktemp("container-replicas"), READY_TIMEOUT_S, containers=True,
                                engine="podman")


def test_every_replica_container_runs_under_the_cpu_limit(container_replicas):
    for server in container_replicas.servers:
        inspect = subprocess.run(["podman", "inspect", "--format", "{{json .HostConfig.NanoCpus}}", server.name],
                                 env=server.environment, capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(inspect.stdout) == int(container_cpu_limit() * 1e9), server.name


def test_a_killed_tritonserver_in_a_replica_container_loses_no_request_and_rejoins(container_replicas):
    result = drill.failover(container_replicas)
    print(f"\nfailover (containers): {result}")
    assert result["errors"] == {}, result["failures"]
    assert result["out_after_s"] is not None, "HAProxy never took the killed replica out"
    assert result["restarted"], "the launcher must start a fresh tritonserver"
    assert result["rejoined_after_s"] is not None, f"the restarted replica never rejoined; logs in " \
        f"{container_replicas.run_dir}"
    assert result["served_while_out"][1] > 0 and result["served_after_rejoin"][0] > 0
    assert result["stub_faults"] in (0, None), "a Python backend stub faulted while the replica restarted"

