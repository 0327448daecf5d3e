"""The container path: the image of the Dockerfile, built and run with docker or, where no Docker engine runs, podman.

``build_command`` builds the image from the checkout after ``make export`` on one of two bases (``BASE``): ``ngc``,
the NGC Triton image (production), or ``local``, a Debian base made here by ``scripts/local-base.sh`` that carries the
embedded tritonserver (no registry needed). ``run_command`` starts the launcher in it with the same settings as the
embedded server: the front, the watchdog, admission and honest health. Ports are published on ``HOST`` only
(loopback by default); inside, the launcher binds 0.0.0.0, the container's own network namespace. The root
filesystem is read-only with a tmpfs on ``/tmp``; no capability, no privilege escalation; the user is the image's
(1000).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tritonkit import paths
from tritonkit.client.health import wait_until_ready
from tritonkit.server.command import launcher_args
from tritonkit.server.errors import NoEngine
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.base import READY_TIMEOUT_S, ServerProcess
from tritonkit.server.supervisor.procfs import child_running
from tritonkit.server.supervisor.spawn import spawn

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"  # same core (2.51.0) as the embedded server
LOCAL_BASE = "localhost/tritonkit-local-base:bookworm"  # scripts/local-base.sh makes it
LOCAL_TAG = "tritonkit-server:latest"
BASES = ("ngc", "local")
ENGINES = ("docker", "podman")
SHM_SIZE = "1g"  # the Python backend moves tensors through /dev/shm; Docker's default 64 MB is too small
TMP_SIZE = "256m"  # the watchdog's files; on the local base also the backend folder (TRITONKIT_RUNTIME)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# podman on these machines: no CAP_SYS_RESOURCE and cgroup v1, so crun fails and the default ulimits cannot be set
# (shared/FACTS.md). runc and capped limits work; the file is written under .triton/ and named by CONTAINERS_CONF.
PODMAN_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""


def engine(choice: str = "auto") -> str:
    """``docker`` where its engine answers, else ``podman`` where installed; or the one asked for."""
    if choice in ENGINES:
        return choice
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True, timeout=30,
                                                 check=False).returncode == 0:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    raise NoEngine("no container engine: docker is missing or has no engine, and podman is not installed; fix: "
                   "install Docker, or `sudo apt-get install -y podman runc uidmap slirp4netns fuse-overlayfs "
                   "catatonit debootstrap` (Debian)")


def default_base(engine_name: str) -> str:
    """``ngc`` with docker (production); ``local`` with podman, where no NGC image can be pulled (these machines)."""
    return "ngc" if engine_name == "docker" else "local"


def environment(engine_name: str) -> dict[str, str]:
    """Extra environment for the engine: podman's configuration file (written on first use)."""
    if engine_name != "podman":
        return {}
    conf = paths.runtime() / "containers.conf"
    if not conf.is_file() or conf.read_text() != PODMAN_CONF:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(PODMAN_CONF)
    return {"CONTAINERS_CONF": str(conf)}


def build_command(image: str = DEFAULT_IMAGE, tag: str = LOCAL_TAG, *, engine_name: str = "docker",
                  base: str = "ngc") -> list[str]:
    """Builds the Dockerfile on ``base`` (``ngc``: ``image``; ``local``: ``LOCAL_BASE``). Run ``make export`` first."""
    if base not in BASES:
        raise ValueError(f"base {base!r}: use one of {', '.join(BASES)}")
    command = [engine_name, "build", "--build-arg", f"BASE={base}", "--build-arg", f"TRITON_IMAGE={image}"]
    if engine_name == "podman" and HOST_CA_BUNDLE.is_file():
        # A build-time volume, not a layer: pip inside the build trusts what this machine trusts (a proxy's CA).
        command += ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    return [*command, "-t", tag, str(paths.root())]


def run_command(settings: ServerSettings, tag: str = LOCAL_TAG, *, engine_name: str = "docker", gpus: str = "",
                name: str | None = None, cpus: float | None = None) -> list[str]:
    """Runs the image's launcher with ``settings``.

    Args:
        settings: the same settings the embedded launcher takes; ``host`` decides where ports are published.
        tag: the image built by ``build_command``.
        engine_name: ``docker`` or ``podman`` (the same flags).
        gpus: value for ``--gpus`` (for example ``all``); empty runs without GPUs.
        name: the container's name (``--name``), for tools that inspect or stop it.
        cpus: a CPU limit (``--cpus``, a CFS quota like a pod's ``limits.cpu``); None leaves it unlimited.
    """
    command = [engine_name, "run", "--rm", "--init", f"--shm-size={SHM_SIZE}", "--read-only",
               f"--tmpfs=/tmp:rw,nosuid,size={TMP_SIZE}", "--cap-drop=ALL",
               "--security-opt=no-new-privileges", "-e", "TRITON_ADMIN_KEY",  # the key from this environment
               "-e", "LOG_FORMAT"]  # --log-format, which the launcher puts in its environment
    if name:
        command += ["--name", name]
    if gpus:
        command.append(f"--gpus={gpus}")
    if cpus is not None:
        if cpus <= 0:
            raise ValueError(f"cpus={cpus:g}: a CPU limit must be above 0 (or None for none)")
        command.append(f"--cpus={cpus:g}")
    for port in (settings.http_port, settings.grpc_port, settings.metrics_port):
        command += ["-p", f"{settings.host}:{port}:{port}"]
    return [*command, tag, *launcher_args(settings)]


class ContainerServer(ServerProcess):
    """``python -m tritonkit.server --container`` as a replica: a ``ServerProcess`` whose launcher runs in a container.

    The image must be built (``--build-only``); each instance runs one named container with ``settings``' ports.
    """

    def __init__(self, settings: ServerSettings, name: str, log_path: Path, engine_name: str = "podman",
                 cpus: float | None = None):
        self.settings, self.name, self.log_path, self.engine_name = settings, name, log_path, engine_name
        self.cpus = cpus
        self.environment = {**os.environ, **environment(engine_name), "TRITON_ADMIN_KEY": settings.admin_key}
        self.process: subprocess.Popen | None = None

    def start(self) -> ContainerServer:
        subprocess.run([self.engine_name, "rm", "-f", self.name], env=self.environment, capture_output=True,
                       timeout=60, check=False)  # a container left by an owner killed with SIGKILL
        argv = [sys.executable, "-m", "tritonkit.server", "--container", "--engine", self.engine_name,
                "--name", self.name, *launcher_args(self.settings)]
        if self.cpus is not None:
            argv += ["--cpus", f"{self.cpus:g}"]
        with self.log_path.open("ab") as output:
            self.process = spawn(argv, env=self.environment, cwd=str(paths.root()), output=output)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        return wait_until_ready(self.settings.http_url, timeout_s, alive=self.alive)

    @property
    def pid(self) -> int:
        """The launcher's pid inside the container, as this machine sees it (the child of the container's init)."""
        inspect = subprocess.run([self.engine_name, "inspect", "--format", "{{.State.Pid}}", self.name],
                                 env=self.environment, capture_output=True, text=True, timeout=60, check=True)
        init = int(inspect.stdout.strip())
        launcher = child_running(init, b"tritonkit.server")
        if launcher is None:
            raise RuntimeError(f"no launcher under the init (pid {init}) of container {self.name}")
        return launcher

    def stop(self, timeout_s: float | None = None) -> int:
        """SIGTERM (passed on to the launcher in the container: it drains), then SIGKILL after ``timeout_s`` (30)."""
        timeout_s = 30 if timeout_s is None else timeout_s
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            subprocess.run([self.engine_name, "rm", "-f", self.name], env=self.environment, capture_output=True,
                           timeout=60, check=False)
            return self.process.wait()
