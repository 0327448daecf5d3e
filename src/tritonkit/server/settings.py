"""Server settings: one frozen dataclass, read from the environment and checked early.

Both launchers (embedded ``python -m tritonkit.server`` and ``python -m tritonkit.server docker``) take the same
settings, so ports, security flags and repositories cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from pathlib import Path

from tritonkit import paths
from tritonkit.server.errors import SettingsError

ADMIN_HEADER = "triton-admin-key"  # lower case: gRPC metadata keys must be
# Triton prefixes the key for gRPC: clients send this metadata key there (HTTP takes ADMIN_HEADER).
GRPC_ADMIN_HEADER = f"triton-grpc-protocol-{ADMIN_HEADER}"
# APIs that change or reveal the server's internals; inference, health, metadata and statistics stay open.
RESTRICTED_APIS = ("model-repository", "model-config", "shared-memory", "logging", "trace")
MODEL_CONTROL_MODES = ("none", "explicit")
LOOPBACK = "127.0.0.1"
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-.~]{16,256}")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How to run tritonserver. Defaults are the secure ones: loopback, no model control.

    Attributes:
        host: address the HTTP, gRPC and metrics endpoints bind to.
        http_port: HTTP/REST port.
        grpc_port: gRPC port.
        metrics_port: Prometheus metrics port.
        model_control: ``none`` (load everything at start) or ``explicit`` (load/unload API allowed).
        admin_key: secret expected in the ``triton-admin-key`` header for the restricted APIs.
        admin_key_generated: True when ``admin_key`` was generated because ``TRITON_ADMIN_KEY`` was unset.
        repositories: model repositories, each passed as ``--model-repository``.
        log_verbose: tritonserver's ``--log-verbose`` level.
        watchdog: reload a Python-backend model whose stub died or stopped (embedded server only; see
            watchdog.py). tritonserver then runs in explicit model-control mode so that it can; with
            ``model_control="none"`` the front still refuses load/unload from outside.
        hang_s: the watchdog reloads a model whose stub has been inside one ``execute`` for longer (seconds).
        http_guard: put the front (``server.front``) on the public HTTP, gRPC and metrics ports (embedded server
            only): 400 for malformed JSON and oversized shapes, honest health over HTTP and gRPC, recoveries next
            to Triton's metrics; tritonserver moves to private loopback ports.
    """

    admin_key: str
    host: str = LOOPBACK
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    model_control: str = "none"
    admin_key_generated: bool = False
    repositories: tuple[Path, ...] = dataclasses.field(default_factory=paths.repositories)
    log_verbose: int = 0
    http_guard: bool = True
    watchdog: bool = True
    hang_s: float = 10.0

    def __post_init__(self):
        for name in ("http_port", "grpc_port", "metrics_port"):
            port = getattr(self, name)
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise SettingsError(f"{name.upper()}={port!r} is not a TCP port; use an integer in 1..65535")
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        if len(set(ports)) != 3:
            raise SettingsError(f"HTTP_PORT, GRPC_PORT and METRICS_PORT must differ, got {ports}")
        if self.model_control not in MODEL_CONTROL_MODES:
            raise SettingsError(
                f"MODEL_CONTROL={self.model_control!r} is not supported; use one of {', '.join(MODEL_CONTROL_MODES)}"
            )
        if not _KEY_PATTERN.fullmatch(self.admin_key):
            raise SettingsError(
                "TRITON_ADMIN_KEY must be 16-256 characters of letters, digits and -_.~ "
                "(it becomes part of tritonserver's flags); unset it to have one generated"
            )
        if not (isinstance(self.hang_s, (int, float)) and self.hang_s > 0):
            raise SettingsError(f"WATCHDOG_HANG_S={self.hang_s!r} must be a positive number of seconds")
        if not self.host.strip():
            raise SettingsError("HOST is empty; leave it unset for loopback or give an address such as 0.0.0.0")
        if not self.repositories:
            raise SettingsError("at least one model repository is needed")

    @property
    def triton_model_control(self) -> str:
        """The mode tritonserver runs in: explicit when asked for, or when the watchdog must be able to reload."""
        return "explicit" if self.model_control == "explicit" or self.watchdog else "none"

    @property
    def http_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{_url_host(self.host)}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.metrics_port}/metrics"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> ServerSettings:
        """Reads HOST, HTTP_PORT, GRPC_PORT, METRICS_PORT, MODEL_CONTROL, TRITON_ADMIN_KEY, LOG_VERBOSE, HTTP_GUARD,
        WATCHDOG, WATCHDOG_HANG_S.

        Keyword ``overrides`` win over the environment (used by tests and CLI flags).
        """
        env = os.environ if environ is None else environ
        values = {
            "host": env.get("HOST") or LOOPBACK,
            "http_port": _int_setting(env, "HTTP_PORT", 8000),
            "grpc_port": _int_setting(env, "GRPC_PORT", 8001),
            "metrics_port": _int_setting(env, "METRICS_PORT", 8002),
            "model_control": env.get("MODEL_CONTROL") or "none",
            "log_verbose": _int_setting(env, "LOG_VERBOSE", 0),
            "http_guard": _bool_setting(env, "HTTP_GUARD", True),
            "watchdog": _bool_setting(env, "WATCHDOG", True),
            "hang_s": _float_setting(env, "WATCHDOG_HANG_S", 10.0),
        }
        key = env.get("TRITON_ADMIN_KEY")
        values["admin_key"] = key or secrets.token_urlsafe(24)
        values["admin_key_generated"] = not key
        values.update(overrides)
        return cls(**values)


def _int_setting(env, name: str, default: int) -> int:
    return _number_setting(env, name, default, int, "an integer")


def _float_setting(env, name: str, default: float) -> float:
    return _number_setting(env, name, default, float, "a number")


def _number_setting(env, name: str, default, kind, what: str):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not {what}") from None


def _bool_setting(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1 or 0")


def _url_host(host: str) -> str:
    """The address a client on this machine should dial: a wildcard bind is reached over loopback."""
    if host in ("0.0.0.0", "::"):
        return LOOPBACK
    return f"[{host}]" if ":" in host else host
