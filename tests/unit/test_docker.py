"""The container path cannot run here (no Docker engine): check it agrees with the embedded path."""

import os
import re
import shlex
import subprocess
import sys

import pytest
import tomllib

from tritonkit import paths
from tritonkit.server.errors import EmbeddedServerError
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor import container
from tritonkit.server.supervisor.embedded import default_backend_directory, embedded_command, pytriton_root
from tritonkit.server.supervisor.process import TritonServer

SETTINGS = ServerSettings(admin_key="b" * 24, http_port=9100, grpc_port=9101, metrics_port=9102)


def _server_part(command):
    return command[command.index("tritonserver") + 1 :] if "tritonserver" in command else command[1:]


def _without(args, prefixes):
    return [arg for arg in args if not arg.startswith(prefixes)]


def test_docker_run_starts_the_images_launcher_with_the_embedded_launchers_flags():
    # The same settings give the same launcher flags in both places; only the host (the image's HOST=0.0.0.0)
    # and the repositories (baked into the image) are the image's.
    command = container.run_command(SETTINGS)
    in_docker = command[command.index(container.LOCAL_TAG) + 1 :]
    embedded = TritonServer(SETTINGS, launcher=True).commands()[0]
    assert embedded[:3] == [sys.executable, "-m", "tritonkit.server"]
    assert _without_options(embedded[3:], ("--host", "--model-repository")) == in_docker
    assert "-v" not in command, "the image carries the repositories: nothing is mounted"


def _without_options(args, names):
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        else:
            kept.append(arg)
    return kept


def test_docker_run_is_read_only_without_capabilities_and_takes_the_key_from_the_environment():
    command = container.run_command(SETTINGS)
    assert {"--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"} <= set(command)
    assert any(arg.startswith("--tmpfs=/tmp:") for arg in command)
    assert command[command.index("-e") + 1] == "TRITON_ADMIN_KEY"  # the value stays out of `ps`
    assert SETTINGS.admin_key not in " ".join(command)
    assert [command[at + 1] for at, arg in enumerate(command) if arg == "-e"] == ["TRITON_ADMIN_KEY", "LOG_FORMAT"]


def test_a_native_tritonserver_gets_the_embedded_flags_and_its_own_backends(tmp_path, monkeypatch):
    native = tmp_path / "tritonserver"
    native.write_text("#!/bin/sh\n")
    native.chmod(0o755)
    embedded = embedded_command(SETTINGS, default_backend_directory())
    monkeypatch.setenv("TRITONSERVER", str(native))
    in_image = embedded_command(SETTINGS, default_backend_directory())
    assert in_image[0] == str(native)
    assert in_image[1:] == [arg for arg in embedded[1:] if not arg.startswith("--backend-directory")]
    native.chmod(0o644)
    with pytest.raises(EmbeddedServerError, match="TRITONSERVER=.* is not an executable tritonserver"):
        embedded_command(SETTINGS, default_backend_directory())


def test_dockerfile_runs_the_launcher_as_a_non_root_user_on_the_baked_repositories():
    dockerfile = (paths.root() / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["python3", "-m", "tritonkit.server"\]$', dockerfile, re.M)
    user = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    root = re.search(r"TRITONKIT_ROOT=(\S+)", dockerfile).group(1)
    assert f"\nCOPY . {root}/\n" in dockerfile  # what .dockerignore admits, below
    assert "TRITONSERVER=/opt/tritonserver/bin/tritonserver" in dockerfile
    assert re.search(r"^\s+HOST=0\.0\.0\.0", dockerfile, re.M)
    ignore = (paths.root() / ".dockerignore").read_text().splitlines()
    assert {"*", "!src/tritonkit/", "!model_repository/", "!ensembles/", "!gpu_repository/"} <= set(ignore)
    assert f"echo {root}/src > " in dockerfile  # the package is importable from there


def test_the_gpu_overlay_serves_the_repositories_the_image_carries():
    dockerfile = (paths.root() / "Dockerfile").read_text()
    root = re.search(r"TRITONKIT_ROOT=(\S+)", dockerfile).group(1)
    patch = (paths.root() / "deploy" / "kubernetes" / "overlays" / "gpu" / "gpu.yaml").read_text()
    served = re.findall(r"--model-repository=(\S+)", patch)
    expected = [paths.gpu_repository(), paths.ensembles()]  # a model name in two repositories is refused
    assert served == [f"{root}/{repository.relative_to(paths.root())}" for repository in expected]
    ignore = (paths.root() / ".dockerignore").read_text().splitlines()
    assert all(f"!{repository.relative_to(paths.root())}/" in ignore for repository in expected)


def test_docker_run_publishes_ports_on_loopback_by_default():
    command = container.run_command(SETTINGS)
    published = [command[i + 1] for i, arg in enumerate(command) if arg == "-p"]
    assert published == ["127.0.0.1:9100:9100", "127.0.0.1:9101:9101", "127.0.0.1:9102:9102"]


def test_docker_run_publishes_on_host_when_host_is_set():
    command = container.run_command(ServerSettings(admin_key="b" * 24, host="0.0.0.0"))
    assert "0.0.0.0:8000:8000" in command


def test_dockerfile_base_image_matches_makefile_and_launcher():
    dockerfile = (paths.root() / "Dockerfile").read_text()
    makefile = (paths.root() / "Makefile").read_text()
    assert re.search(r"^ARG TRITON_IMAGE=(\S+)$", dockerfile, re.M).group(1) == container.DEFAULT_IMAGE
    assert re.search(r"^TRITON_IMAGE \?= (\S+)$", makefile, re.M).group(1) == container.DEFAULT_IMAGE
    assert "24.10" in container.DEFAULT_IMAGE  # the same core (2.51.0) as the embedded binary


@pytest.mark.parametrize(("engine", "base"), [("docker", "ngc"), ("podman", "local")])
def test_cli_dry_run_prints_build_and_run_commands(engine, base):
    done = subprocess.run(
        [sys.executable, "-m", "tritonkit.server", "--container", "--engine", engine, "--dry-run"],
        capture_output=True, text=True, cwd=paths.root(), timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRITON_ADMIN_KEY": "c" * 24, "TRITON_IMAGE": "example/triton:1"},
    )
    assert done.returncode == 0, done.stderr
    build, run = done.stdout.strip().splitlines()
    # The engine picks the base: docker builds on NGC (production), podman on the local base (no registry here).
    assert build.startswith(f"{engine} build --build-arg BASE={base} --build-arg TRITON_IMAGE=example/triton:1 ")
    assert run.startswith(f"{engine} run --rm --init --shm-size=1g --read-only ")
    assert " -p 127.0.0.1:8000:8000 " in run and run.endswith(" tritonkit-server:latest " + " ".join(
        ["--http-port", "8000", "--grpc-port", "8001", "--metrics-port", "8002", "--model-control", "none",
         "--log-verbose", "0", "--watchdog-hang-s", "10.0"]))


def test_both_bases_install_the_same_packages_and_the_local_one_the_embedded_server():
    dockerfile = (paths.root() / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [sorted(shlex.split(match))
                for match in re.findall(r"pip install --no-cache-dir (.+)$", dockerfile, re.M)]
    extras = tomllib.loads((paths.root() / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    shared = sorted(extras["models"] + extras["front"])
    embedded = [spec for spec in extras["server"] if not spec.startswith("tritonkit[")]
    assert installs == [shared, sorted(shared + embedded)]
    assert re.search(r"^FROM \$\{TRITON_IMAGE\} AS ngc$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{LOCAL_BASE\} AS local$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", dockerfile, re.M)


IMAGE_LACKS = ("pytriton", "onnxruntime", "torch", "transformers", "sklearn", "onnx", "locust", "flask", "matplotlib")
REFUSE = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {lacks!r}:
            raise ImportError(name + ' is not in the image')
sys.meta_path.insert(0, Refuse())
"""


def test_the_launcher_and_the_steps_import_only_what_the_image_installs():
    # The image has the NGC Python, the models and front extras and the tritonkit package: no pytriton, no
    # onnxruntime (tritonserver's own backend runs ONNX), no export or load-test packages.
    modules = ["tritonkit.server.__main__", "tritonkit.server.supervisor.process", "tritonkit.server.front.__main__",
               "tritonkit.server.front.grpc_guard", "tritonkit.server.supervisor.watchdog", "tritonkit.steps.steps",
               "tritonkit.steps.texts", "tritonkit.steps.imaging", "tritonkit.steps.labels"]
    code = REFUSE.format(lacks=IMAGE_LACKS) + "".join(f"import {module}\n" for module in modules)
    code += "from tritonkit.server.__main__ import main\nraise SystemExit(main(['--dry-run']))\n"
    utils = pytriton_root() / "backends" / "python"  # triton_python_backend_utils: every stub has it
    environment = {**os.environ, "TRITONSERVER": "/bin/true", "TRITON_ADMIN_KEY": "d" * 24, "PYTHONPATH": str(utils)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=paths.root(), env=environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("/bin/true --model-repository="), done.stdout


def _site() -> list[str]:
    """site-packages of this environment (numpy, pillow, tokenizers), without the editable tritonkit."""
    import site

    return site.getsitepackages()


def test_docker_run_sets_a_cpu_limit_only_when_asked():
    assert not any(arg.startswith("--cpus") for arg in container.run_command(SETTINGS))
    command = container.run_command(SETTINGS, cpus=1.5)
    assert "--cpus=1.5" in command and command.index("--cpus=1.5") < command.index(container.LOCAL_TAG)
    with pytest.raises(ValueError, match="above 0"):
        container.run_command(SETTINGS, cpus=0)


@pytest.mark.parametrize(("value", "accepted"), [("1.5", True), ("0", False), ("-1", False), ("many", False)])
def test_cli_takes_a_positive_cpu_limit_for_the_container(value, accepted):
    done = subprocess.run(
        [sys.executable, "-m", "tritonkit.server", "--container", "--engine", "podman", "--cpus", value, "--dry-run"],
        capture_output=True, text=True, cwd=paths.root(), timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRITON_ADMIN_KEY": "c" * 24},
    )
    if accepted:
        assert done.returncode == 0 and " --cpus=1.5 " in done.stdout, done.stderr
    else:
        assert done.returncode == 2 and "is not a CPU count above 0" in done.stderr


def test_a_replica_container_passes_its_cpu_limit_to_the_container_launcher(monkeypatch, tmp_path):
    spawned = []
    monkeypatch.setattr(container, "spawn", lambda argv, **_: spawned.append(argv))
    monkeypatch.setattr(container.subprocess, "run", lambda *args, **kwargs: None)  # the `rm -f` of a leftover
    container.ContainerServer(SETTINGS, "replica", tmp_path / "log", "podman", cpus=1.5).start()
    (argv,) = spawned
    assert argv[argv.index("--cpus") + 1] == "1.5"
