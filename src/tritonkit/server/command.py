"""The tritonserver command line, shared by the embedded launcher and the Docker launcher.

Only flags that Triton 2.51 (NGC 24.10, the embedded binary) understands: it refuses to start on
an unknown one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from tritonkit.server.settings import ADMIN_HEADER, LOOPBACK, RESTRICTED_APIS, ServerSettings

EXIT_TIMEOUT_S = 10  # in-flight requests get this long to finish on Ctrl-C / SIGTERM


class PrivatePorts(NamedTuple):
    """Loopback ports tritonserver listens on when the front (server/guard.py) holds the public ones."""

    http: int
    grpc: int
    metrics: int


def tritonserver_args(
    settings: ServerSettings,
    repositories: Sequence[str],
    *,
    backend_directory: str | None = None,
    private: PrivatePorts | None = None,
) -> list[str]:
    """Arguments after the ``tritonserver`` program name.

    Args:
        settings: ports, host, model control and admin key.
        repositories: model repository paths as the server sees them (host or container paths).
        backend_directory: where backends live; ``None`` keeps the server's default
            (``/opt/tritonserver/backends`` in the container).
        private: where tritonserver's own endpoints listen, on loopback, when the front (server/guard.py)
            holds the public ports; ``None`` serves them directly on ``settings``' host and ports.
    """
    restricted = f"{','.join(RESTRICTED_APIS)}:{ADMIN_HEADER}={settings.admin_key}"
    args = [f"--model-repository={path}" for path in repositories]
    if backend_directory is not None:
        args.append(f"--backend-directory={backend_directory}")
    host, ports = ((settings.host, PrivatePorts(settings.http_port, settings.grpc_port, settings.metrics_port))
                   if private is None else (LOOPBACK, private))
    args += [
        f"--http-address={host}",
        f"--http-port={ports.http}",
        f"--grpc-address={host}",
        f"--grpc-port={ports.grpc}",
        f"--metrics-address={host}",
        f"--metrics-port={ports.metrics}",
        f"--model-control-mode={settings.triton_model_control}",
        f"--http-restricted-api={restricted}",
        f"--grpc-restricted-protocol={restricted}",
        "--strict-readiness=true",  # ready only when every model is
        "--exit-on-error=true",  # a model that fails to load stops the start
        f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
        f"--log-verbose={settings.log_verbose}",
    ]
    if settings.triton_model_control == "explicit":
        args.append("--load-model=*")  # explicit mode loads nothing by default; start with everything
    return args


def launcher_args(settings: ServerSettings) -> list[str]:
    """The flags of ``python -m tritonkit.server`` that give it ``settings``, but for the host and the repositories
    (the container's image sets those: ``HOST=0.0.0.0`` and the repositories it carries)."""
    args = ["--http-port", str(settings.http_port), "--grpc-port", str(settings.grpc_port),
            "--metrics-port", str(settings.metrics_port), "--model-control", settings.model_control,
            "--log-verbose", str(settings.log_verbose), "--watchdog-hang-s", str(settings.hang_s)]
    if not settings.http_guard:
        args.append("--no-http-guard")
    if not settings.watchdog:
        args.append("--no-watchdog")
    return args
