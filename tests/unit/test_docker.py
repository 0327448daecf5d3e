"""The container path cannot run here (no Docker engine): check it agrees with the embedded path."""

import re
import shlex
import subprocess
import sys
import tomllib

from server import docker
from server.embedded import DEFAULT_BACKEND_DIRECTORY, embedded_command
from server.settings import DEFAULT_REPOSITORIES, PROJECT_ROOT, ServerSettings

SETTINGS = ServerSettings(admin_key="b" * 24, http_port=9100, grpc_port=9101, metrics_port=9102)
HOST_ONLY_FLAGS = ("--backend-directory", "--http-address", "--grpc-address", "--metrics-address", "--model-repository")


def _server_part(command):
    return command[command.index("tritonserver") + 1 :] if "tritonserver" in command else command[1:]


def _without(args, prefixes):
    return [arg for arg in args if not arg.startswith(prefixes)]


def test_docker_run_passes_the_embedded_servers_flags():
    in_docker = _server_part(docker.run_command(SETTINGS))
    embedded = embedded_command(SETTINGS, DEFAULT_BACKEND_DIRECTORY)[1:]
    assert _without(in_docker, HOST_ONLY_FLAGS) == _without(embedded, HOST_ONLY_FLAGS)
    assert "--http-address=0.0.0.0" in in_docker  # the container's own namespace; the host side is -p


def test_docker_run_mounts_the_same_repositories_the_embedded_server_serves():
    command = docker.run_command(SETTINGS)
    mounts = [command[i + 1] for i, arg in enumerate(command) if arg == "-v"]
    served = [arg.split("=", 1)[1] for arg in _server_part(command) if arg.startswith("--model-repository=")]
    assert [m.split(":")[0] for m in mounts] == [str(p.resolve()) for p in DEFAULT_REPOSITORIES]
    assert [m.split(":")[1] for m in mounts] == served == ["/workspace/model_repository", "/workspace/ensembles"]
    assert all(m.endswith(":ro") for m in mounts)


def test_docker_run_publishes_ports_on_loopback_by_default():
    command = docker.run_command(SETTINGS)
    published = [command[i + 1] for i, arg in enumerate(command) if arg == "-p"]
    assert published == ["127.0.0.1:9100:9100", "127.0.0.1:9101:9101", "127.0.0.1:9102:9102"]


def test_docker_run_publishes_on_host_when_host_is_set():
    command = docker.run_command(ServerSettings(admin_key="b" * 24, host="0.0.0.0"))
    assert "0.0.0.0:8000:8000" in command


def test_dockerfile_base_image_matches_makefile_and_launcher():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^ARG TRITON_IMAGE=(\S+)$", dockerfile, re.M).group(1) == docker.DEFAULT_IMAGE
    assert re.search(r"^TRITON_IMAGE \?= (\S+)$", makefile, re.M).group(1) == docker.DEFAULT_IMAGE
    assert "24.10" in docker.DEFAULT_IMAGE  # the same core (2.51.0) as the embedded binary


def test_dockerfile_installs_exactly_the_models_extra():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    install = re.search(r"pip install --no-cache-dir (.+)$", dockerfile, re.M).group(1)
    in_image = sorted(shlex.split(install))
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert in_image == sorted(pyproject["project"]["optional-dependencies"]["models"])


def test_image_carries_the_python_steps_package():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "COPY tritonkit_steps /opt/tritonkit/tritonkit_steps" in dockerfile
    assert "!tritonkit_steps/" in (PROJECT_ROOT / ".dockerignore").read_text()
    step = (PROJECT_ROOT / "ensembles" / "minilm_tokenizer" / "1" / "model.py").read_text()
    assert "from tritonkit_steps.steps import" in step


def test_cli_dry_run_prints_build_and_run_commands():
    done = subprocess.run(
        [sys.executable, "-m", "server", "--docker", "--dry-run"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRITON_ADMIN_KEY": "c" * 24, "TRITON_IMAGE": "example/triton:1"},
    )
    assert done.returncode == 0, done.stderr
    build, run = done.stdout.strip().splitlines()
    assert build.startswith("docker build --build-arg TRITON_IMAGE=example/triton:1 ")
    assert run.startswith("docker run --rm --init --shm-size=1g -p 127.0.0.1:8000:8000")
    assert f"--http-restricted-api=model-repository,model-config,shared-memory,logging,trace:triton-admin-key={'c' * 24}" in run

