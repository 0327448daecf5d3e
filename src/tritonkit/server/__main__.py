"""``python -m tritonkit.server``: run the real tritonserver on this repository, embedded or in a container.

The launcher wires the two parts of the package: the supervisor (``supervisor/``: tritonserver, the watchdog,
restarts) starts the front (``front/``) by its command line; it logs through ``logs.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tritonkit import paths
from tritonkit.client.errors import ServerNotReady
from tritonkit.server import logs
from tritonkit.server.command import EXIT_TIMEOUT_S
from tritonkit.server.errors import EmbeddedServerError, NoEngine, NotExported, SettingsError
from tritonkit.server.settings import (
    ADMIN_HEADER,
    GRPC_ADMIN_HEADER,
    MODEL_CONTROL_MODES,
    ServerSettings,
)
from tritonkit.server.supervisor import container
from tritonkit.server.supervisor.base import READY_TIMEOUT_S
from tritonkit.server.supervisor.process import TritonServer, missing_versions


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Names a default only where there is one to name: the others resolve from the environment (said in the help)."""

    def _get_help_string(self, action):
        if action.default in (None, False, "", argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.server",
        description="Serve model_repository/ and ensembles/ with a real tritonserver (2.51.0). "
        "Every option defaults to its environment variable, then to the secure default.",
        formatter_class=_Defaults,
    )
    parser.add_argument("--host", help="bind address [env HOST, default 127.0.0.1: loopback only]")
    parser.add_argument("--http-port", type=int, help="HTTP/REST port [env HTTP_PORT, default 8000]")
    parser.add_argument("--grpc-port", type=int, help="gRPC port [env GRPC_PORT, default 8001]")
    parser.add_argument("--metrics-port", type=int, help="Prometheus metrics port [env METRICS_PORT, default 8002]")
    parser.add_argument(
        "--model-control",
        choices=MODEL_CONTROL_MODES,
        help="'explicit' allows load/unload through the (admin-only) repository API [env MODEL_CONTROL, default none]",
    )
    parser.add_argument(
        "--no-http-guard",
        dest="http_guard",
        action="store_false",
        default=None,
        help="serve tritonserver's HTTP, gRPC and metrics ports directly, without the front (server/front/): "
        "malformed JSON then gets Triton 2.51's 500, an oversized shape can abort it, and health does not see a "
        "model the watchdog is recovering [env HTTP_GUARD=0]",
    )
    parser.add_argument(
        "--no-watchdog",
        dest="watchdog",
        action="store_false",
        default=None,
        help="do not reload a Python-backend model whose stub died or stopped (a dead stub then fails every "
        "request to its model while readiness stays 200: Triton 2.51) [env WATCHDOG=0]",
    )
    parser.add_argument(
        "--watchdog-hang-s",
        dest="hang_s",
        type=float,
        help="reload a model whose stub has been inside one execute for longer than this many seconds "
        "[env WATCHDOG_HANG_S, default 10]",
    )
    parser.add_argument("--log-verbose", type=int, help="tritonserver --log-verbose level [env LOG_VERBOSE, default 0]")
    parser.add_argument(
        "--model-repository",
        action="append",
        type=Path,
        dest="repositories",
        help="model repository; repeat for several [default: model_repository/ and ensembles/]",
    )
    parser.add_argument(
        "--container",
        "--docker",
        dest="container",
        action="store_true",
        help="build the image (Dockerfile: Triton, the exported repositories, this launcher as entrypoint) and run "
        "it in a container instead of the embedded binary: read-only, non-root, ports on HOST",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", *container.ENGINES),
        default=os.environ.get("CONTAINER_ENGINE") or "auto",
        help="with --container: docker where its engine answers, else podman [env CONTAINER_ENGINE]",
    )
    parser.add_argument(
        "--base",
        choices=container.BASES,
        default=os.environ.get("IMAGE_BASE") or None,
        help="with --container: 'ngc' (TRITON_IMAGE, production) or 'local' (a Debian base made here by "
        "scripts/local-base.sh, with the embedded tritonserver) [env IMAGE_BASE; default: ngc with docker, local "
        "with podman]",
    )
    parser.add_argument(
        "--image",
        default=os.environ.get("TRITON_IMAGE") or container.DEFAULT_IMAGE,
        help="the NGC base image for --base ngc [env TRITON_IMAGE]",
    )
    parser.add_argument(
        "--gpus",
        default=os.environ.get("DOCKER_GPUS", ""),
        help="value of `docker run --gpus` for --container, e.g. 'all'; empty runs CPU-only [env DOCKER_GPUS]",
    )
    parser.add_argument("--name", default="tritonkit", help="with --container: the container's name")
    parser.add_argument("--cpus", type=_cpu_limit, default=None,
                        help="with --container: a CPU limit (`run --cpus`, as a pod's limits.cpu); replicas on one "
                        "machine need one, see README 'Replicas here' [default: none]")
    parser.add_argument("--build-only", action="store_true",
                        help="with --container: build the image and stop (what `make image` runs)")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=os.environ.get(logs.FORMAT_ENV) or "text",
                        help="the launcher's, supervisor's and watchdog's lines: 'text' (time, level, component: "
                        "message) or 'json' (one object a line, for a container's log collector); tritonserver's "
                        "own lines stay as Triton writes them [env LOG_FORMAT]")
    parser.add_argument("--dry-run", action="store_true", help="print the command(s) instead of running them")
    return parser.parse_args(argv)


log = logging.getLogger("tritonkit.launcher")


def _cpu_limit(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a CPU count above 0, e.g. 1.5")
    return value


def settings_from(args: argparse.Namespace) -> ServerSettings:
    names = ("host", "http_port", "grpc_port", "metrics_port", "model_control", "log_verbose", "http_guard",
             "watchdog", "hang_s")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.repositories:
        overrides["repositories"] = tuple(args.repositories)
    return ServerSettings.from_env(**overrides)


def serve_embedded(settings: ServerSettings, dry_run: bool) -> int:
    server = TritonServer(settings)
    if dry_run:
        for command in server.commands():
            print(shlex.join(command))
        return 0
    if settings.admin_key_generated:
        _say(f"TRITON_ADMIN_KEY was unset; generated one for this run: {settings.admin_key}\n"
             f"  admin APIs need the header '{ADMIN_HEADER}: <key>' ('{GRPC_ADMIN_HEADER}' on gRPC); "
             "export TRITON_ADMIN_KEY to choose your own.")
    signal.signal(signal.SIGTERM, _raise_interrupt)  # also what the owner's death sends (see process.py)
    try:
        server.start()
        server.wait_until_ready(READY_TIMEOUT_S)
        server.supervise()
        print_banner(settings, server.pid)
        return server.wait()
    except (NotExported, EmbeddedServerError) as exc:
        log.error("%s", exc)
        return 2
    except ServerNotReady as exc:
        log.error("%s", exc)
        return server.stop() or 1
    except KeyboardInterrupt:
        log.info("stopping tritonserver (in-flight requests get up to %d s)...", EXIT_TIMEOUT_S)
        return server.stop()


def _raise_interrupt(*_):
    raise KeyboardInterrupt


def _say(text: str) -> None:
    """For the person at the terminal: printed as it is, or, logging as JSON, one record like every other line."""
    if logs.current_format() == "json":
        log.info("%s", text.strip())
    else:
        print(text, flush=True)


def print_banner(settings: ServerSettings, pid: int) -> None:
    models = ready_models(settings)
    _say(
        f"\ntritonserver ready (pid {pid}); Ctrl-C stops it\n"
        f"  HTTP     {settings.http_url}\n"
        f"  gRPC     {settings.grpc_url}\n"
        f"  metrics  {settings.metrics_url}\n"
        f"  models   {', '.join(models) or '(none)'}\n"
        f"  control  {settings.model_control}; admin APIs need header '{ADMIN_HEADER}' "
        f"(gRPC: '{GRPC_ADMIN_HEADER}')\n"
    )


def ready_models(settings: ServerSettings) -> list[str]:
    """``name vN`` for every READY model version, from the (admin-only) repository index."""
    request = urllib.request.Request(
        f"{settings.http_url}/v2/repository/index",
        data=b"{}",
        headers={ADMIN_HEADER: settings.admin_key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        index = json.load(response)
    return [f"{entry['name']} v{entry['version']}" for entry in index if entry.get("state") == "READY"]


def serve_container(settings: ServerSettings, args: argparse.Namespace) -> int:
    try:
        engine = container.engine(args.engine)
    except NoEngine as exc:
        print(f"error: {exc}; or use `make serve` for the embedded server", file=sys.stderr)
        return 2
    base = args.base or container.default_base(engine)
    commands = [container.build_command(args.image, engine_name=engine, base=base)]
    if not args.build_only:
        commands.append(container.run_command(settings, engine_name=engine, gpus=args.gpus, name=args.name,
                                            cpus=args.cpus))
    if args.dry_run:
        for command in commands:
            print(shlex.join(command))
        return 0
    problem = _not_buildable(settings, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    environment = {**os.environ, **container.environment(engine), "TRITON_ADMIN_KEY": settings.admin_key}
    code = _ensure_local_base(engine, environment) if base == "local" else 0
    if code:
        return code
    if settings.admin_key_generated and not args.build_only:
        print(f"TRITON_ADMIN_KEY was unset; generated one for this run: {settings.admin_key}")
    for command in commands:  # `run -e TRITON_ADMIN_KEY` takes the key from this environment
        print(f"$ {shlex.join(command)}", flush=True)
        code = _call_forwarding_signals(command, environment)
        if code:
            return code
    return 0


def _call_forwarding_signals(command: list[str], environment: dict[str, str]) -> int:
    """Runs ``command``; SIGTERM and SIGINT sent to this process go to it (``run`` passes them to the container)."""
    child = subprocess.Popen(command, env=environment)
    previous = {signum: signal.signal(signum, lambda signum, _: child.send_signal(signum))
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _not_buildable(settings: ServerSettings, args: argparse.Namespace) -> str | None:
    if args.repositories:
        return ("the image carries model_repository/ and ensembles/ (see the Dockerfile); --model-repository does "
                "not apply to --container")
    missing = missing_versions(settings.repositories)
    if missing:
        return (f"the image bakes in the exported models, and these are not exported yet: {', '.join(missing)}\n"
                "fix: run `make export`")
    return None


def _ensure_local_base(engine: str, environment: dict[str, str]) -> int:
    """Makes the local base image (scripts/local-base.sh) unless the engine has it."""
    exists = [engine, "image", "exists", container.LOCAL_BASE] if engine == "podman" else \
        [engine, "image", "inspect", container.LOCAL_BASE]
    if subprocess.call(exists, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
        return 0
    print(f"{container.LOCAL_BASE} is missing: making it with scripts/local-base.sh", flush=True)
    return subprocess.call([str(paths.root() / "scripts" / "local-base.sh"), engine, container.LOCAL_BASE],
                           env=environment)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(args.log_format)
    os.environ[logs.FORMAT_ENV] = args.log_format  # the front (a child) logs the same way
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.container:
        return serve_container(settings, args)
    return serve_embedded(settings, args.dry_run)


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
