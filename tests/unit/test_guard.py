"""server/guard.py: which answers it rewrites, and the launcher's command for it."""

import json

from tritonkit.server.embedded import guard_command
from tritonkit.server.guard import bad_request_body, is_misreported_parse_error
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


def test_guard_listens_on_the_public_port_and_forwards_to_loopback():
    command = guard_command(ServerSettings(admin_key="k" * 20, host="::1", http_port=9000), 45678)
    assert command[3:7] == ["--listen", "[::1]:9000", "--upstream", "http://127.0.0.1:45678"]
    assert command[-1] == "--refuse-model-control"  # explicit only for the watchdog: no load/unload from outside
