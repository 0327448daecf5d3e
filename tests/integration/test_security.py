"""Secure defaults: loopback only, admin APIs behind the admin header on HTTP and gRPC."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.integration

LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def listening_addresses(port: int) -> set[str]:
    """Local addresses (kernel hex form) of sockets listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def _request(url: str, *, method: str = "GET", headers: dict | None = None) -> tuple[int, str]:
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_every_endpoint_listens_on_loopback_only(server):
    settings = server.settings
    for port in (settings.http_port, settings.grpc_port, settings.metrics_port):
        addresses = listening_addresses(port)
        assert addresses, f"nothing listens on port {port}"
        assert addresses <= LOOPBACK_HEX, f"port {port} listens beyond loopback: {addresses}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/repository/index"),
        ("GET", "/v2/models/diabetes_regressor/config"),
        ("GET", "/v2/systemsharedmemory/status"),
        ("GET", "/v2/logging"),
        ("GET", "/v2/trace/setting"),
    ],
)
def test_admin_api_is_forbidden_without_admin_header(server, method, path):
    status, body = _request(server.settings.http_url + path, method=method)
    assert status == 403
    assert "triton-admin-key" in body


def test_admin_api_is_forbidden_with_wrong_key(server):
    status, _ = _request(server.settings.http_url + "/v2/repository/index", method="POST",
                         headers={"triton-admin-key": "not-the-key-at-all"})
    assert status == 403


def test_repository_index_answers_with_admin_header(server, admin_headers):
    status, body = _request(server.settings.http_url + "/v2/repository/index", method="POST", headers=admin_headers)
    assert status == 200
    assert {"diabetes_regressor", "cancer_classifier"} <= {entry["name"] for entry in json.loads(body)}


def test_inference_health_and_metadata_stay_open(server):
    assert _request(server.settings.http_url + "/v2/health/ready")[0] == 200
    assert _request(server.settings.http_url + "/v2/models/diabetes_regressor")[0] == 200


def test_grpc_repository_index_needs_admin_header(server, grpc_admin_headers):
    client = grpcclient.InferenceServerClient(server.settings.grpc_url)
    try:
        with pytest.raises(InferenceServerException, match="triton-grpc-protocol-triton-admin-key") as missing:
            client.get_model_repository_index()
        with pytest.raises(InferenceServerException, match="restricted") as wrong:
            client.get_model_repository_index(headers={"triton-grpc-protocol-triton-admin-key": "wrong-key-value"})
        # Triton 2.51 says UNAVAILABLE, which clients retry as an outage; the front says what it is.
        assert missing.value.status() == wrong.value.status() == "StatusCode.PERMISSION_DENIED"
        names = {model.name for model in client.get_model_repository_index(headers=grpc_admin_headers).models}
        assert "cancer_classifier" in names
    finally:
        client.close()


def test_load_is_refused_in_default_model_control_mode(server, admin_headers, grpc_admin_headers):
    # tritonserver runs in explicit mode so the watchdog can reload a crashed model; from outside, HTTP
    # load/unload stays off unless MODEL_CONTROL=explicit (the guard answers), even with the admin key.
    for action in ("load", "unload"):
        status, body = _request(server.settings.http_url + f"/v2/repository/models/diabetes_regressor/{action}",
                                method="POST", headers=admin_headers)
        assert status == 403, body
        assert "MODEL_CONTROL=explicit" in body
    client = grpcclient.InferenceServerClient(server.settings.grpc_url)  # the gRPC front refuses the same
    try:
        with pytest.raises(InferenceServerException, match="MODEL_CONTROL=explicit") as refused:
            client.load_model("diabetes_regressor", headers=grpc_admin_headers)
        assert refused.value.status() == "StatusCode.PERMISSION_DENIED"
        with pytest.raises(InferenceServerException, match="MODEL_CONTROL=explicit"):
            client.unload_model("diabetes_regressor", headers=grpc_admin_headers)
    finally:
        client.close()
    assert _request(server.settings.http_url + "/v2/models/diabetes_regressor/ready")[0] == 200
