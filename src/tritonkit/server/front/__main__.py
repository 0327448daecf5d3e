"""``python -m tritonkit.server.front``: the public HTTP, gRPC and metrics ports in one event loop (the launcher
starts it; see http_guard.py and grpc_guard.py).

    python -m tritonkit.server.front --listen HOST:PORT --upstream http://127.0.0.1:PORT \\
        [--grpc-listen HOST:PORT --grpc-upstream 127.0.0.1:PORT] [--metrics-listen HOST:PORT --metrics-upstream URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from tritonkit.server import logs
from tritonkit.server.command import EXIT_TIMEOUT_S
from tritonkit.server.front import grpc_guard
from tritonkit.server.front.admission import Admission
from tritonkit.server.front.http_guard import make_app, make_metrics_app
from tritonkit.server.health import Health


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.server.front",
        description="Front of the embedded tritonserver on the public HTTP, gRPC and metrics ports: 400 instead of "
        "Triton 2.51's 500 for malformed JSON, shape checks, honest health, recoveries next to Triton's metrics.",
    )
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", help="public HTTP address to serve")
    parser.add_argument("--upstream", required=True, metavar="URL", help="tritonserver's HTTP endpoint")
    parser.add_argument("--grpc-listen", metavar="HOST:PORT", help="public gRPC address to serve")
    parser.add_argument("--grpc-upstream", metavar="HOST:PORT", help="tritonserver's gRPC endpoint")
    parser.add_argument("--metrics-listen", metavar="HOST:PORT", help="public metrics address to serve")
    parser.add_argument("--metrics-upstream", metavar="URL", help="tritonserver's metrics URL (.../metrics)")
    parser.add_argument("--health-file", type=Path, help="the watchdog's health file: readiness answers 503 for "
                        "what it lists as down, liveness when it gave up; /metrics shows its recoveries")
    parser.add_argument("--model-repository", action="append", type=Path, dest="repositories", default=[],
                        help="a repository tritonserver serves (repeat): each model's in-flight limit is read from "
                        "its config (admission.py); none: no limit")
    parser.add_argument("--refuse-model-control", action="store_true",
                        help="answer 403 to load/unload (tritonserver is explicit only for the watchdog)")
    args = parser.parse_args(argv)
    for front in ("grpc", "metrics"):
        if (getattr(args, f"{front}_listen") is None) != (getattr(args, f"{front}_upstream") is None):
            parser.error(f"--{front}-listen and --{front}-upstream go together")
    return args


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def serve(args: argparse.Namespace) -> None:
    """Runs every front until SIGINT or SIGTERM; in-flight calls then get ``EXIT_TIMEOUT_S`` to finish."""
    admission = Admission.from_repositories(args.repositories)  # one count for both protocols: one loop
    apps = [(make_app(args.upstream, args.health_file, args.refuse_model_control, args.metrics_upstream, admission),
             args.listen)]
    if args.metrics_listen:
        apps.append((make_metrics_app(args.metrics_upstream, args.health_file), args.metrics_listen))
    runners = []
    for app, address in apps:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=EXIT_TIMEOUT_S)
        await runner.setup()
        await web.TCPSite(runner, *_host_port(address)).start()
        runners.append(runner)
    grpc_server = None
    if args.grpc_listen:
        grpc_server = await grpc_guard.start(args.grpc_listen, args.grpc_upstream, Health(args.health_file),
                                             args.refuse_model_control, admission)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    closing = [runner.cleanup() for runner in runners]
    if grpc_server is not None:
        closing.append(grpc_server.stop(EXIT_TIMEOUT_S))  # refuses new calls, lets in-flight ones finish
    await asyncio.gather(*closing)


def main(argv: list[str] | None = None) -> int:
    logs.configure(os.environ.get(logs.FORMAT_ENV) or "text")
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
