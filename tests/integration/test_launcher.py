"""`python -m tritonkit.server` (what `make serve` runs): readiness banner, load errors, clean stop."""

import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from conftest import ASSETS, launch, write_lookup_model

from tritonkit import paths
from tritonkit.client.health import ServerNotReady
from tritonkit.server.settings import ADMIN_HEADER

pytestmark = pytest.mark.integration


def test_banner_says_where_it_listens_and_which_models_are_ready(server):
    settings = server.settings
    log = server.log()
    assert f"HTTP     {settings.http_url}" in log and f"gRPC     {settings.grpc_url}" in log
    assert "cancer_classifier v1" in log and "diabetes_regressor v1" in log


def test_launcher_refuses_unexported_model_and_names_the_fix(tmp_path):
    shutil.copytree(ASSETS / "lookup_repository" / "lookup", tmp_path / "lookup")  # config, no version folder
    done = subprocess.run(
        [sys.executable, "-m", "tritonkit.server", "--model-repository", str(tmp_path)],
        capture_output=True, text=True, cwd=paths.root(), timeout=60,
    )
    assert done.returncode == 2
    assert "not exported yet: lookup" in done.stderr and "make export" in done.stderr


def test_launcher_exits_with_error_when_a_model_fails_to_load(tmp_path):
    shutil.copytree(ASSETS / "lookup_repository" / "lookup", tmp_path / "repo" / "lookup")
    (tmp_path / "repo" / "lookup" / "1").mkdir()
    (tmp_path / "repo" / "lookup" / "1" / "model.onnx").write_bytes(b"this is not an onnx file")
    launched = launch(tmp_path / "server.log", [tmp_path / "repo"])
    try:
        code = launched.processes[0].wait(timeout=60)
    finally:
        launched.stop()
    assert code != 0
    log = launched.log()
    assert "failed to load 'lookup'" in log
    assert "did not become ready" in log or "exited before it was ready" in log


def test_generated_admin_key_is_printed_and_guards_the_admin_apis_then_sigint_stops_cleanly(tmp_path):
    shutil.copytree(ASSETS / "lookup_repository" / "lookup", tmp_path / "repo" / "lookup")
    write_lookup_model(tmp_path / "repo" / "lookup" / "1" / "model.onnx")
    launched = launch(tmp_path / "server.log", [tmp_path / "repo"], TRITON_ADMIN_KEY="")
    try:
        launched.wait_until_ready(60)
        launched.wait_for_log("tritonserver ready", 30)
    except ServerNotReady:
        launched.stop()
        pytest.fail(launched.log())
    log = launched.log()
    assert log.count("generated one for this run") == 1
    key = re.search(r"generated one for this run: (\S+)", log).group(1)
    index = f"{launched.settings.http_url}/v2/repository/index"
    assert _post_status(index, {}) == 403
    assert _post_status(index, {ADMIN_HEADER: key}) == 200
    assert launched.stop() == 0
    assert "stopping tritonserver" in launched.log()
    with socket.socket() as sock:  # the port is free again: nothing was left listening
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        sock.bind(("127.0.0.1", launched.settings.http_port))


def _post_status(url: str, headers: dict) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_help_documents_every_environment_variable():
    done = subprocess.run([sys.executable, "-m", "tritonkit.server", "--help"], capture_output=True, text=True,
                          cwd=paths.root(), timeout=60)
    for variable in ("HOST", "HTTP_PORT", "GRPC_PORT", "METRICS_PORT", "MODEL_CONTROL", "TRITON_IMAGE", "HTTP_GUARD",
                     "WATCHDOG"):
        assert variable in done.stdout
