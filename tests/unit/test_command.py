import re
import subprocess

from tritonkit.server.command import PrivatePorts, tritonserver_args
from tritonkit.server.settings import ADMIN_HEADER, ServerSettings
from tritonkit.server.supervisor.embedded import pytriton_root

KEY = "a" * 24


def _args(**overrides):
    settings = ServerSettings(admin_key=KEY, **overrides)
    return tritonserver_args(settings, ["/r/model_repository", "/r/ensembles"])


def test_args_bind_every_endpoint_to_loopback_by_default():
    args = _args()
    for flag in ("--http-address", "--grpc-address", "--metrics-address"):
        assert f"{flag}=127.0.0.1" in args


def test_args_serve_both_repositories_in_order():
    repositories = [arg for arg in _args() if arg.startswith("--model-repository=")]
    assert repositories == ["--model-repository=/r/model_repository", "--model-repository=/r/ensembles"]


def test_args_restrict_admin_apis_on_http_and_grpc():
    expected = f"model-repository,model-config,shared-memory,logging,trace:{ADMIN_HEADER}={KEY}"
    args = _args()
    assert f"--http-restricted-api={expected}" in args
    assert f"--grpc-restricted-protocol={expected}" in args


def test_args_are_strict_when_models_fail():
    args = _args(watchdog=False)
    assert "--strict-readiness=true" in args and "--exit-on-error=true" in args
    assert "--model-control-mode=none" in args and not any(a.startswith("--load-model") for a in args)


def test_args_are_explicit_for_the_watchdog_which_must_be_able_to_reload():
    args = _args()  # watchdog on by default
    assert "--model-control-mode=explicit" in args and "--load-model=*" in args


def test_args_load_every_model_when_control_is_explicit():
    args = _args(model_control="explicit")
    assert "--model-control-mode=explicit" in args and "--load-model=*" in args


def test_args_use_only_flags_the_embedded_tritonserver_knows():
    # 2.51 refuses to start on an unknown flag; ask the real binary which ones it has.
    binary = pytriton_root() / "bin" / "tritonserver"
    done = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30)
    help_text = done.stdout + done.stderr  # it prints its usage on stderr
    known = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, flags=re.MULTILINE))
    used = {arg.split("=", 1)[0] for arg in _args(model_control="explicit")}
    assert used <= known, f"unknown to tritonserver 2.51: {sorted(used - known)}"


def test_args_move_every_endpoint_to_private_loopback_ports_behind_the_front():
    args = tritonserver_args(ServerSettings(admin_key=KEY, host="0.0.0.0"), ["/r"],
                             private=PrivatePorts(45678, 45679, 45680))
    for endpoint, port in (("http", 45678), ("grpc", 45679), ("metrics", 45680)):
        assert f"--{endpoint}-address=127.0.0.1" in args and f"--{endpoint}-port={port}" in args
    public = tritonserver_args(ServerSettings(admin_key=KEY, host="0.0.0.0"), ["/r"])
    assert "--grpc-address=0.0.0.0" in public and "--grpc-port=8001" in public  # no front: the settings' own
