"""server/guard.py: which answers it rewrites, and the launcher's command for it."""

import json
import math

import pytest

from tritonkit.server.command import PrivatePorts, front_command
from tritonkit.server.front.http_guard import bad_request_body, is_misreported_parse_error, shape_error
from tritonkit.server.settings import ServerSettings

TRITON_PARSE_ERROR = json.dumps({"error": "failed to parse the request JSON buffer: Invalid value. at 0"}).encode()


def test_only_tritons_json_parse_500_is_rewritten():
    assert is_misreported_parse_error(500, TRITON_PARSE_ERROR)
    assert not is_misreported_parse_error(400, TRITON_PARSE_ERROR)
    assert not is_misreported_parse_error(500, b'{"error": "onnxruntime crashed"}')
    assert is_misreported_parse_error(500, b'{"error":"Unable to parse \'inputs\'"}')
    assert is_misreported_parse_error(500, b'{"error":"Unable to parse JSON bytes array: attempt to access JSON '
                                           b'non-string as string"}')


def test_rewritten_body_keeps_tritons_detail_and_names_the_fix():
    error = json.loads(bad_request_body(TRITON_PARSE_ERROR))["error"]
    assert error.startswith("malformed or incomplete JSON in the request body (failed to parse the request JSON buffer")
    assert '"inputs"' in error and "Inference-Header-Content-Length" in error


def test_rewritten_body_survives_a_body_that_is_not_json():
    assert "garbage" in json.loads(bad_request_body(b"garbage 500"))["error"]


def test_guard_listens_on_the_public_ports_and_forwards_to_loopback():
    settings = ServerSettings(admin_key="k" * 20, host="::1", http_port=9000, grpc_port=9001, metrics_port=9002)
    command = front_command(settings, PrivatePorts(45678, 45679, 45680))
    assert command[3:15] == ["--listen", "[::1]:9000", "--upstream", "http://127.0.0.1:45678",
                             "--grpc-listen", "[::1]:9001", "--grpc-upstream", "127.0.0.1:45679",
                             "--metrics-listen", "[::1]:9002", "--metrics-upstream", "http://127.0.0.1:45680/metrics"]
    assert command[-1] == "--refuse-model-control"  # explicit only for the watchdog: no load/unload from outside


@pytest.mark.parametrize(("shape", "data"), [
    ([1, 100_000_000_000], [1.0]),  # aborted Triton 2.51 (std::bad_alloc) before the guard checked it
    ([4096, 4096], [[1, 2, 3]]),
    ([2_000_000], []),
])
def test_a_large_shape_beyond_its_data_is_refused_with_both_counts(shape, data):
    body = json.dumps({"inputs": [{"name": "FEATURES", "shape": shape, "datatype": "FP32", "data": data}]})
    error = shape_error(body.encode(), None)
    assert error is not None and str(shape) in error and f"declares {math.prod(shape)} elements" in error


@pytest.mark.parametrize("tensor", [
    {"name": "X", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6]]},
    {"name": "X", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
    {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["hi"]},
    {"name": "X", "shape": [1, 100_000_000_000], "datatype": "FP32", "parameters": {"binary_data_size": 4}},
    {"name": "X", "shape": [-1, 2], "datatype": "FP32", "data": [1]},  # Triton's own 400 names it
    {"name": "X", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3]]},  # small: Triton's own 400 too
    {"name": "X", "shape": [1, 1], "datatype": "BYTES", "data": []},
])
def test_matching_or_binary_or_unparseable_inputs_go_on_to_triton(tensor):
    assert shape_error(json.dumps({"inputs": [tensor]}).encode(), None) is None


def test_only_the_json_header_of_a_binary_request_is_read():
    header = json.dumps({"inputs": [{"name": "X", "shape": [1, 10**9], "datatype": "FP32", "data": [1]}]}).encode()
    assert shape_error(header + b"\x00" * 64, str(len(header))) is not None
    assert shape_error(b"not json at all", None) is None and shape_error(header, "nan") is None


@pytest.mark.parametrize(("body", "message"), [
    ({"id": "", "inputs": [], "outputs": [], "parameters": [None, None]},
     "'parameters' must be a JSON object; it is a JSON array"),  # Triton 2.51: 500 from every model
    ({"id": "", "parameters": None, "inputs": [], "outputs": []},
     "'parameters' must be a JSON object; it is a JSON null"),  # Triton 2.51: 500 too, "non-object"
    ([{"inputs": []}], "the request body is a JSON array"),
    ({"id": 7, "inputs": []}, "'id' must be a string; it is a JSON number"),
    ({"inputs": {"name": "X"}}, "'inputs' must be an array; it is a JSON object"),
    ({"inputs": [None]}, "'inputs[0]' is a JSON null"),
    ({"inputs": [{"name": 1, "shape": [1], "datatype": "FP32", "data": [1]}]}, "'inputs[0].name' must be a string"),
    ({"inputs": [{"name": "X", "shape": [1, "4"], "datatype": "FP32", "data": [1]}]},
     "'inputs[0].shape' must be an array of integers"),
    ({"inputs": [{"name": "X", "shape": [1], "datatype": "FP32", "data": [1], "parameters": []}]},
     "'inputs[0].parameters' must be a JSON object"),
    ({"inputs": [], "outputs": [{"name": "Y", "parameters": "binary"}]},
     "'outputs[0].parameters' must be a JSON object"),
], ids=["parameters-array", "parameters-null", "array-body", "id-number", "inputs-object", "input-null",
        "name-number", "shape-string", "input-parameters", "output-parameters"])
def test_a_body_that_breaks_the_protocols_json_types_is_refused_naming_the_member(body, message):
    error = shape_error(json.dumps(body).encode(), None)
    assert error is not None and message in error and error.endswith("(Open Inference Protocol, REST)"), error
