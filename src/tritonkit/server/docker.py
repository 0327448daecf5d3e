"""The container path: the image of the Dockerfile (NGC Triton, the repositories baked in, the launcher as entrypoint).

``docker build`` makes it from the checkout after ``make export``; ``docker run`` starts the launcher in it with the
same settings as the embedded server: the front, the watchdog and honest health, tritonserver being the image's
native one (``TRITONSERVER``). Ports are published on ``HOST`` only (loopback by default); inside, the launcher
binds 0.0.0.0, the container's own network namespace. The root filesystem is read-only; ``/tmp`` is a tmpfs.
"""

from __future__ import annotations

from tritonkit import paths
from tritonkit.server.command import launcher_args
from tritonkit.server.settings import ServerSettings

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"  # same core (2.51.0) as the embedded server
LOCAL_TAG = "tritonkit-server:latest"
SHM_SIZE = "1g"  # the Python backend moves tensors through /dev/shm; Docker's default 64 MB is too small
TMP_SIZE = "64m"  # the watchdog's health file and the stubs' busy marks


def build_command(image: str = DEFAULT_IMAGE, tag: str = LOCAL_TAG) -> list[str]:
    """``docker build`` of the project's Dockerfile on top of ``image`` (run ``make export`` first)."""
    return ["docker", "build", "--build-arg", f"TRITON_IMAGE={image}", "-t", tag, str(paths.root())]


def run_command(settings: ServerSettings, tag: str = LOCAL_TAG, *, gpus: str = "") -> list[str]:
    """``docker run`` of the image's launcher with ``settings``.

    Args:
        settings: the same settings the embedded launcher takes; ``host`` decides where ports are published.
        tag: the image built by ``build_command``.
        gpus: value for ``--gpus`` (for example ``all``); empty runs without GPUs.
    """
    command = ["docker", "run", "--rm", "--init", f"--shm-size={SHM_SIZE}", "--read-only",
               f"--tmpfs=/tmp:rw,noexec,nosuid,size={TMP_SIZE}", "--cap-drop=ALL",
               "--security-opt=no-new-privileges", "-e", "TRITON_ADMIN_KEY"]  # the key from this environment
    if gpus:
        command.append(f"--gpus={gpus}")
    for port in (settings.http_port, settings.grpc_port, settings.metrics_port):
        command += ["-p", f"{settings.host}:{port}:{port}"]
    return [*command, tag, *launcher_args(settings)]
