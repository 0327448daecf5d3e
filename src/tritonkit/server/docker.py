"""The container path: the same repositories, ports and flags on the NGC Triton image.

``docker build`` adds the Python packages the Python-backend models need (the ``models`` extra of
``pyproject.toml``) to ``TRITON_IMAGE``; ``docker run`` mounts ``model_repository/`` and ``ensembles/``
read-only and publishes the ports on ``HOST`` only (loopback by default). Inside the container
tritonserver binds 0.0.0.0, which is the container's own network namespace; what the host exposes
is decided by ``-p HOST:port:port``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tritonkit import paths
from tritonkit.server.command import tritonserver_args
from tritonkit.server.settings import ServerSettings

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"  # same core (2.51.0) as the embedded server
LOCAL_TAG = "tritonkit-server:latest"
CONTAINER_ROOT = "/workspace"
SHM_SIZE = "1g"  # the Python backend moves tensors through /dev/shm; Docker's default 64 MB is too small


def container_path(host_path: Path) -> str:
    """Where a repository under the project root is mounted in the container."""
    return f"{CONTAINER_ROOT}/{Path(host_path).resolve().relative_to(paths.root())}"


def build_command(image: str = DEFAULT_IMAGE, tag: str = LOCAL_TAG) -> list[str]:
    """``docker build`` of the project's Dockerfile on top of ``image``."""
    return ["docker", "build", "--build-arg", f"TRITON_IMAGE={image}", "-t", tag, str(paths.root())]


def run_command(settings: ServerSettings, tag: str = LOCAL_TAG, *, gpus: str = "") -> list[str]:
    """``docker run`` of tritonserver with the same flags as the embedded server.

    Args:
        settings: the same settings the embedded launcher takes; ``host`` decides where ports are published.
        tag: the image built by ``build_command``.
        gpus: value for ``--gpus`` (for example ``all``); empty runs without GPUs.
    """
    inside = dataclasses.replace(settings, host="0.0.0.0", watchdog=False)  # the watchdog is the embedded launcher's
    command = ["docker", "run", "--rm", "--init", f"--shm-size={SHM_SIZE}"]
    if gpus:
        command.append(f"--gpus={gpus}")
    for port in (settings.http_port, settings.grpc_port, settings.metrics_port):
        command += ["-p", f"{settings.host}:{port}:{port}"]
    for repository in settings.repositories:
        command += ["-v", f"{Path(repository).resolve()}:{container_path(repository)}:ro"]
    repositories = [container_path(repository) for repository in settings.repositories]
    return [*command, tag, "tritonserver", *tritonserver_args(inside, repositories)]

