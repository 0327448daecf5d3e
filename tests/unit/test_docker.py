"""The container path cannot run here (no Docker engine): check it agrees with the embedded path."""

import dataclasses
import re
import shlex
import shutil
import subprocess
import sys

import tomllib

from tritonkit import paths
from tritonkit.server import docker
from tritonkit.server.embedded import default_backend_directory, embedded_command
from tritonkit.server.settings import ServerSettings

SETTINGS = ServerSettings(admin_key="b" * 24, http_port=9100, grpc_port=9101, metrics_port=9102)
HOST_ONLY_FLAGS = ("--backend-directory", "--http-address", "--grpc-address", "--metrics-address", "--model-repository")


def _server_part(command):
    return command[command.index("tritonserver") + 1 :] if "tritonserver" in command else command[1:]


def _without(args, prefixes):
    return [arg for arg in args if not arg.startswith(prefixes)]


def test_docker_run_passes_the_embedded_servers_flags():
    in_docker = _server_part(docker.run_command(SETTINGS))
    # The watchdog is the embedded launcher's: without it, both paths run tritonserver with the same flags.
    embedded = embedded_command(dataclasses.replace(SETTINGS, watchdog=False), default_backend_directory())[1:]
    assert "--model-control-mode=none" in in_docker
    assert _without(in_docker, HOST_ONLY_FLAGS) == _without(embedded, HOST_ONLY_FLAGS)
    assert "--http-address=0.0.0.0" in in_docker  # the container's own namespace; the host side is -p


def test_docker_run_mounts_the_same_repositories_the_embedded_server_serves():
    command = docker.run_command(SETTINGS)
    mounts = [command[i + 1] for i, arg in enumerate(command) if arg == "-v"]
    served = [arg.split("=", 1)[1] for arg in _server_part(command) if arg.startswith("--model-repository=")]
    assert [m.split(":")[0] for m in mounts] == [str(p.resolve()) for p in paths.repositories()]
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
    dockerfile = (paths.root() / "Dockerfile").read_text()
    makefile = (paths.root() / "Makefile").read_text()
    assert re.search(r"^ARG TRITON_IMAGE=(\S+)$", dockerfile, re.M).group(1) == docker.DEFAULT_IMAGE
    assert re.search(r"^TRITON_IMAGE \?= (\S+)$", makefile, re.M).group(1) == docker.DEFAULT_IMAGE
    assert "24.10" in docker.DEFAULT_IMAGE  # the same core (2.51.0) as the embedded binary


def test_dockerfile_installs_exactly_the_models_extra():
    dockerfile = (paths.root() / "Dockerfile").read_text().replace("\\\n", " ")
    install = re.search(r"pip install --no-cache-dir (.+)$", dockerfile, re.M).group(1)
    in_image = sorted(shlex.split(install))
    pyproject = tomllib.loads((paths.root() / "pyproject.toml").read_text())
    assert in_image == sorted(pyproject["project"]["optional-dependencies"]["models"])


def test_image_carries_the_python_steps_package():
    dockerfile = (paths.root() / "Dockerfile").read_text()
    assert "COPY src/tritonkit/steps /opt/tritonkit/tritonkit/steps" in dockerfile
    assert "COPY src/tritonkit/__init__.py src/tritonkit/catalog.py /opt/tritonkit/tritonkit/" in dockerfile
    ignore = (paths.root() / ".dockerignore").read_text()
    assert "!src/tritonkit/steps/" in ignore and "!src/tritonkit/catalog.py" in ignore
    step = (paths.root() / "ensembles" / "minilm_tokenizer" / "1" / "model.py").read_text()
    assert "from tritonkit.steps.steps import" in step


def test_cli_dry_run_prints_build_and_run_commands():
    done = subprocess.run(
        [sys.executable, "-m", "tritonkit.server", "--docker", "--dry-run"],
        capture_output=True, text=True, cwd=paths.root(), timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRITON_ADMIN_KEY": "c" * 24, "TRITON_IMAGE": "example/triton:1"},
    )
    assert done.returncode == 0, done.stderr
    build, run = done.stdout.strip().splitlines()
    assert build.startswith("docker build --build-arg TRITON_IMAGE=example/triton:1 ")
    assert run.startswith("docker run --rm --init --shm-size=1g -p 127.0.0.1:8000:8000")
    assert ("--http-restricted-api=model-repository,model-config,shared-memory,logging,trace:"
            f"triton-admin-key={'c' * 24}") in run



def test_steps_import_nothing_of_tritonkit_beyond_what_the_image_copies(tmp_path):
    # The image holds tritonkit/__init__.py, catalog.py and steps/ only: the steps must import from those alone.
    package = tmp_path / "tritonkit"
    shutil.copytree(paths.root() / "src" / "tritonkit" / "steps", package / "steps")
    for name in ("__init__.py", "catalog.py"):
        shutil.copy2(paths.root() / "src" / "tritonkit" / name, package / name)
    code = "import tritonkit.steps.texts, tritonkit.steps.imaging, tritonkit.steps.labels, tritonkit.steps.heartbeat"
    done = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {[str(tmp_path)] + _site()!r}; "
                           + code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    imported = set(re.findall(r"^from (tritonkit[\w.]*) import|^import (tritonkit[\w.]*)",
                              (package / "steps" / "steps.py").read_text(), re.M))
    assert {a or b for a, b in imported} <= {"tritonkit", "tritonkit.steps", "tritonkit.steps.heartbeat"}


def _site() -> list[str]:
    """site-packages of this environment (numpy, pillow, tokenizers), without the editable tritonkit."""
    import site

    return site.getsitepackages()
