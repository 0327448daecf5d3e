import pytest

from tritonkit.server.errors import SettingsError
from tritonkit.server.settings import LOOPBACK, ServerSettings

KEY = "k" * 20


def test_settings_are_secure_when_environment_is_empty():
    settings = ServerSettings.from_env({})
    assert settings.host == LOOPBACK
    assert (settings.http_port, settings.grpc_port, settings.metrics_port) == (8000, 8001, 8002)
    assert settings.model_control == "none"
    assert settings.admin_key_generated and len(settings.admin_key) >= 16


def test_generated_admin_keys_differ_between_runs():
    assert ServerSettings.from_env({}).admin_key != ServerSettings.from_env({}).admin_key


def test_settings_read_environment_when_variables_are_set():
    env = {"HOST": "0.0.0.0", "HTTP_PORT": "9000", "GRPC_PORT": "9001", "METRICS_PORT": "9002",
           "MODEL_CONTROL": "explicit", "TRITON_ADMIN_KEY": KEY}
    settings = ServerSettings.from_env(env)
    assert (settings.host, settings.http_port, settings.model_control) == ("0.0.0.0", 9000, "explicit")
    assert settings.admin_key == KEY and not settings.admin_key_generated
    assert settings.http_url == "http://127.0.0.1:9000"  # a wildcard bind is dialled over loopback


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT='eighty' is not an integer"),
        ({"GRPC_PORT": "70000"}, "GRPC_PORT=70000 is not a TCP port"),
        ({"HTTP_PORT": "9000", "GRPC_PORT": "9000"}, "must differ"),
        ({"MODEL_CONTROL": "poll"}, "MODEL_CONTROL='poll' is not supported; use one of none, explicit"),
        ({"TRITON_ADMIN_KEY": "short"}, "TRITON_ADMIN_KEY must be 16-256 characters"),
        ({"TRITON_ADMIN_KEY": "has,comma=and:colon-xx"}, "TRITON_ADMIN_KEY must be"),
    ],
)
def test_settings_raise_named_error_when_value_is_bad(env, message):
    with pytest.raises(SettingsError, match=message):
        ServerSettings.from_env(env)


@pytest.mark.parametrize(("raw", "expected"), [("", True), ("1", True), ("on", True), ("0", False), ("false", False)])
def test_http_guard_is_on_unless_http_guard_says_otherwise(raw, expected):
    assert ServerSettings.from_env({"HTTP_GUARD": raw}).http_guard is expected


def test_http_guard_rejects_a_value_that_is_not_a_boolean():
    with pytest.raises(SettingsError, match="HTTP_GUARD='maybe' is not a boolean"):
        ServerSettings.from_env({"HTTP_GUARD": "maybe"})
