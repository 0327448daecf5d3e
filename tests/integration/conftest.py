"""A real tritonserver for the integration tests, started exactly as `make serve` starts it.

The session fixture runs ``python -m tritonkit.server`` (through ``TritonServer``) on free loopback ports with a
known admin key, serving ``model_repository/``, ``ensembles/`` and a test-only repository (the ``lookup`` asset),
waits with a deadline, and stops it with SIGINT at the end. When a test failed, the server log is printed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tritonkit import paths
from tritonkit.client.health import ServerNotReady
from tritonkit.deploy.replicas import Layout, Replicas
from tritonkit.export.__main__ import main as export_main
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ADMIN_HEADER, GRPC_ADMIN_HEADER, ServerSettings
from tritonkit.server.supervisor.process import TritonServer

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ADMIN_KEY = "integration-tests-admin-key"
READY_TIMEOUT_S = 120
LOOKUP_TABLE = np.arange(10, dtype=np.float32) * 1.5


def launch(log_path: Path, repositories: list[Path], ports: list[int] | None = None, *,
           model_control: str = "none", **env_overrides: str) -> TritonServer:
    """Starts ``python -m tritonkit.server`` (the launcher `make serve` uses) without waiting for readiness."""
    http, grpc, metrics = ports or free_ports(3)
    settings = ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics,
                              repositories=tuple(repositories), model_control=model_control)
    return TritonServer(settings, launcher=True, log_path=log_path, env=env_overrides).start()


@contextlib.contextmanager
def serving(log_path: Path, repositories: list[Path], **options) -> Iterator[TritonServer]:
    """A launcher on its own free ports serving ``repositories`` (``launch`` options), ready when entered, stopped
    (and required to exit cleanly) after; its log is printed when it does not start."""
    server = launch(log_path, repositories, **options)
    try:
        server.wait_until_ready(READY_TIMEOUT_S)
    except BaseException:
        print(server.log()[-6000:])
        server.stop()
        raise
    yield server
    assert server.stop() == 0, f"the launcher exited badly when stopped; log in {log_path}"


def post_infer(settings: ServerSettings, model: str, body: dict) -> tuple[int, str]:
    """POSTs a JSON inference request; (status, the body, or for an error its ``error`` message)."""
    request = urllib.request.Request(f"{settings.http_url}/v2/models/{model}/infer", data=json.dumps(body).encode(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        try:
            return exc.code, json.loads(text)["error"]
        except (ValueError, KeyError):
            return exc.code, text


def running_replicas(run_dir: Path, ready_timeout_s: float, **options) -> Iterator[Replicas]:
    """Two replicas behind HAProxy and Prometheus (``Replicas(..., **options)``) on free ports, for a module
    fixture: ready when yielded, stopped after, and every replica must exit cleanly."""
    http, grpc, stats, prometheus = free_ports(4)
    layout = Layout.make(2, ADMIN_KEY, http_port=http, grpc_port=grpc, stats_port=stats, prometheus_port=prometheus)
    started = Replicas(layout, run_dir, **options).start()
    try:
        started.wait_until_ready(ready_timeout_s)
    except BaseException:
        started.stop()
        raise
    yield started
    assert started.stop() == 0, f"a replica exited badly when stopped; logs in {run_dir}"


def write_lookup_model(path: Path) -> None:
    """VALUE = table[INDEX]; RUN_BATCH = the batch size of the session.run that computed the row."""
    from onnx import TensorProto, helper, save

    table = helper.make_tensor("table", TensorProto.FLOAT, [len(LOOKUP_TABLE)], LOOKUP_TABLE.tolist())
    first = helper.make_tensor("first", TensorProto.INT64, [1], [0])
    cell = helper.make_tensor("cell", TensorProto.INT64, [2], [1, 1])
    nodes = [
        helper.make_node("Gather", ["table", "INDEX"], ["VALUE"]),
        helper.make_node("Shape", ["INDEX"], ["index_shape"]),
        helper.make_node("Gather", ["index_shape", "first"], ["batch_size"]),
        helper.make_node("Reshape", ["batch_size", "cell"], ["batch_cell"]),
        helper.make_node("Expand", ["batch_cell", "index_shape"], ["RUN_BATCH"]),
    ]
    graph = helper.make_graph(
        nodes,
        "lookup",
        [helper.make_tensor_value_info("INDEX", TensorProto.INT64, ["batch", 1])],
        [
            helper.make_tensor_value_info("VALUE", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("RUN_BATCH", TensorProto.INT64, ["batch", 1]),
        ],
        [table, first, cell],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, path)


@pytest.fixture(scope="session")
def test_repository(tmp_path_factory) -> Path:
    """The ``lookup`` asset model (its ONNX built here: nothing generated is committed) and the ``stuck`` step."""
    repository = tmp_path_factory.mktemp("test_repository")
    shutil.copytree(ASSETS / "lookup_repository" / "lookup", repository / "lookup")
    shutil.copytree(ASSETS / "stuck_repository" / "stuck", repository / "stuck")
    write_lookup_model(repository / "lookup" / "1" / "model.onnx")
    return repository


@pytest.fixture(scope="session")
def server(request, tmp_path_factory, test_repository) -> TritonServer:
    assert export_main(["--check-configs"]) == 0, "python -m tritonkit.export --check-configs failed; run it to see why"
    log_path = tmp_path_factory.mktemp("server") / "tritonserver.log"
    launched = launch(log_path, [*paths.repositories(), test_repository])
    try:
        launched.wait_until_ready(READY_TIMEOUT_S)
        launched.wait_for_log("tritonserver ready", 30)  # the launcher's banner follows readiness
    except ServerNotReady as exc:
        launched.stop()
        pytest.fail(f"tritonserver did not become ready: {exc}")
    yield launched
    code = launched.stop()
    if request.session.testsfailed:
        print(f"\n----- tritonserver log ({log_path}) -----\n{launched.log()[-8000:]}")
    assert code == 0, f"the launcher exited with {code} on SIGINT"


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    return {ADMIN_HEADER: ADMIN_KEY}


@pytest.fixture(scope="session")
def grpc_admin_headers() -> dict[str, str]:
    return {GRPC_ADMIN_HEADER: ADMIN_KEY}


def _numpy_to_triton(array: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return np_to_triton_dtype(array.dtype)


def infer_over(settings: ServerSettings, protocol: str, model: str, inputs: dict[str, np.ndarray],
               outputs: list[str], version: int | None = None) -> dict[str, np.ndarray]:
    """One inference with tritonclient over ``protocol`` (binary tensors on HTTP)."""
    if protocol == "http":
        import tritonclient.http as module

        client = module.InferenceServerClient(settings.http_url.removeprefix("http://"))
    else:
        import tritonclient.grpc as module

        client = module.InferenceServerClient(settings.grpc_url)
    try:
        tensors = []
        for name, array in inputs.items():
            tensor = module.InferInput(name, list(array.shape), _numpy_to_triton(array))
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        requested = [module.InferRequestedOutput(name) for name in outputs]
        result = client.infer(model, tensors, outputs=requested, model_version=str(version or ""))
        return {name: result.as_numpy(name) for name in outputs}
    finally:
        client.close()


@pytest.fixture(params=["http", "grpc"])
def protocol(request) -> str:
    return request.param


@pytest.fixture
def infer(server, protocol):
    """``infer(model, inputs, outputs)`` against the session server over the parametrized protocol."""
    return lambda model, inputs, outputs: infer_over(server.settings, protocol, model, inputs, outputs)


@pytest.fixture
def infer_version(server, protocol):
    """``infer_version(model, version, inputs, outputs)``: a given model version over the parametrized protocol."""
    return lambda model, version, inputs, outputs: infer_over(server.settings, protocol, model, inputs, outputs,
                                                              version)
