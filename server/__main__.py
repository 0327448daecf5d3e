"""``python -m server``: run the real tritonserver on this repository, embedded or in Docker."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from client.health import ServerNotReady, wait_until_ready
from server import docker, embedded
from server.command import EXIT_TIMEOUT_S
from server.ports import free_ports
from server.settings import ADMIN_HEADER, GRPC_ADMIN_HEADER, MODEL_CONTROL_MODES, ServerSettings, SettingsError

READY_TIMEOUT_S = 120  # loading every model on 2 shared cores; a load error exits sooner


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve model_repository/ and ensembles/ with a real tritonserver (2.51.0). "
        "Every option defaults to its environment variable, then to the secure default.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
        help="serve tritonserver's HTTP endpoint directly, without server/guard.py in front (malformed JSON "
        "then gets Triton 2.51's 500 instead of 400) [env HTTP_GUARD=0]",
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
        "--docker",
        action="store_true",
        help="run the NGC container (docker build, then docker run) instead of the embedded binary",
    )
    parser.add_argument(
        "--image",
        default=os.environ.get("TRITON_IMAGE") or docker.DEFAULT_IMAGE,
        help="base Triton image for --docker [env TRITON_IMAGE]",
    )
    parser.add_argument(
        "--gpus",
        default=os.environ.get("DOCKER_GPUS", ""),
        help="value of `docker run --gpus` for --docker, e.g. 'all'; empty runs CPU-only [env DOCKER_GPUS]",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the command(s) instead of running them")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> ServerSettings:
    names = ("host", "http_port", "grpc_port", "metrics_port", "model_control", "log_verbose", "http_guard")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.repositories:
        overrides["repositories"] = tuple(args.repositories)
    return ServerSettings.from_env(**overrides)


def missing_versions(repositories) -> list[str]:
    """Models whose folder has a config.pbtxt but no numeric version folder yet (not exported)."""
    missing = []
    for repository in repositories:
        for config in sorted(Path(repository).glob("*/config.pbtxt")):
            model = config.parent
            if not any(child.is_dir() and child.name.isdigit() for child in model.iterdir()):
                missing.append(f"{model.name} ({model})")
    return missing


def serve_embedded(settings: ServerSettings, dry_run: bool) -> int:
    internal_http_port = free_ports(1)[0] if settings.http_guard else None
    if dry_run:
        print(shlex.join(embedded.embedded_command(settings, embedded.DEFAULT_BACKEND_DIRECTORY, internal_http_port)))
        if internal_http_port is not None:
            print(shlex.join(embedded.guard_command(settings, internal_http_port)))
        return 0
    missing = missing_versions(settings.repositories)
    if missing:
        print("error: not exported yet: " + ", ".join(missing) + "\nfix: run `make export`", file=sys.stderr)
        return 2
    if settings.admin_key_generated:
        print(f"TRITON_ADMIN_KEY was unset; generated one for this run: {settings.admin_key}\n"
              f"  admin APIs need the header '{ADMIN_HEADER}: <key>' ('{GRPC_ADMIN_HEADER}' on gRPC); "
              "export TRITON_ADMIN_KEY to choose your own.")
    # Each child runs in its own session (see embedded.start): we pass on exactly one signal, in order.
    children = [embedded.start(settings, http_port=internal_http_port)]
    if internal_http_port is not None:
        children.append(embedded.start_guard(settings, internal_http_port))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        wait_until_ready(settings.http_url, READY_TIMEOUT_S, alive=lambda: _all_alive(children))
        print_banner(settings, children[0].pid)
        return _wait_any(children)
    except ServerNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _stop(children) or 1
    except KeyboardInterrupt:
        print("stopping tritonserver (in-flight requests get up to "
              f"{EXIT_TIMEOUT_S} s)...", file=sys.stderr, flush=True)
        return _stop(children)


def _raise_interrupt(*_):
    raise KeyboardInterrupt


def _all_alive(children: list[subprocess.Popen]) -> bool:
    return all(child.poll() is None for child in children)


def _wait_any(children: list[subprocess.Popen]) -> int:
    """Waits until one child exits (tritonserver, or the guard in front of it), then stops the others."""
    while _all_alive(children):
        time.sleep(0.5)
    exited = next(child for child in children if child.poll() is not None)
    _stop(children)
    if exited is children[0]:
        return exited.returncode
    print(f"error: the HTTP guard exited ({exited.returncode}); tritonserver was stopped too", file=sys.stderr)
    return exited.returncode or 1


def _stop(children: list[subprocess.Popen]) -> int:
    """Stops the guard first (it finishes its in-flight requests and closes its pooled connections, which
    tritonserver would otherwise wait on), then tritonserver; returns tritonserver's exit code."""
    codes = {}
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        try:
            codes[child.pid] = child.wait(EXIT_TIMEOUT_S + 5)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            child.kill()
            codes[child.pid] = child.wait()
    return codes[children[0].pid]


def print_banner(settings: ServerSettings, pid: int) -> None:
    models = ready_models(settings)
    print(
        f"\ntritonserver ready (pid {pid}); Ctrl-C stops it\n"
        f"  HTTP     {settings.http_url}\n"
        f"  gRPC     {settings.grpc_url}\n"
        f"  metrics  {settings.metrics_url}\n"
        f"  models   {', '.join(models) or '(none)'}\n"
        f"  control  {settings.model_control}; admin APIs need header '{ADMIN_HEADER}' "
        f"(gRPC: '{GRPC_ADMIN_HEADER}')\n",
        flush=True,
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


def serve_docker(settings: ServerSettings, args: argparse.Namespace) -> int:
    commands = [docker.build_command(args.image), docker.run_command(settings, gpus=args.gpus)]
    if args.dry_run:
        for command in commands:
            print(shlex.join(command))
        return 0
    if settings.admin_key_generated:
        print(f"TRITON_ADMIN_KEY was unset; generated one for this run: {settings.admin_key}")
    for command in commands:
        try:
            code = subprocess.call(command)
        except FileNotFoundError:
            print("error: `docker` is not installed; use `make serve` for the embedded server", file=sys.stderr)
            return 2
        if code:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.docker:
        return serve_docker(settings, args)
    return serve_embedded(settings, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
