"""The command lines the supervisor runs: tritonserver's (embedded and in a container), the front's, the launcher's.

Only tritonserver flags that Triton 2.51 (NGC 24.10, the embedded binary) understands: it refuses to start on an
unknown one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from tritonkit.server.settings import ADMIN_HEADER, LOOPBACK, RESTRICTED_APIS, ServerSettings

EXIT_TIMEOUT_S = 10  # in-flight requests get this long to finish on Ctrl-C / SIGTERM


class PrivatePorts(NamedTuple):
    """Loopback ports tritonserver listens on when the front (server/front/) holds the public ones."""

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
        private: where tritonserver's own endpoints listen, on loopback, when the front (server/front/)
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


def front_command(settings: ServerSettings, private: PrivatePorts, health_file: Path | None = None) -> list[str]:
    """The argv of the front that holds the public HTTP, gRPC and metrics ports before tritonserver's ``private``.

    ``health_file``: where the supervisor says which models are down (the front answers readiness from it). The
    front reads the repositories' configs for its admission limits itself.
    """
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    argv = [sys.executable, "-m", "tritonkit.server.front",
            "--listen", f"{host}:{settings.http_port}", "--upstream", f"http://{LOOPBACK}:{private.http}",
            "--grpc-listen", f"{host}:{settings.grpc_port}", "--grpc-upstream", f"{LOOPBACK}:{private.grpc}",
            "--metrics-listen", f"{host}:{settings.metrics_port}",
            "--metrics-upstream", f"http://{LOOPBACK}:{private.metrics}/metrics"]
    if health_file is not None:
        argv += ["--health-file", str(health_file)]
    for repository in settings.repositories:
        argv += ["--model-repository", str(Path(repository).resolve())]
    if settings.model_control == "none" and settings.triton_model_control == "explicit":
        argv.append("--refuse-model-control")  # tritonserver is explicit for the watchdog only
    return argv
