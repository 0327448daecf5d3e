"""``python -m tritonkit.bench.front_cost``: what the front (server/front/) adds to a request.

Starts the embedded server twice, with the front and without (``HTTP_GUARD=0``), and times sequential requests to
``diabetes_regressor`` (a ten-feature linear model, so the hop is not lost in model time) over HTTP and gRPC: the
median of ``--requests`` per repeat, ``--repeats`` repeats, after a warm-up. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tritonkit import paths
from tritonkit.server import logs
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer

MODEL = "diabetes_regressor"
ADMIN_KEY = "front-cost-admin-key"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.bench.front_cost", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


def medians_ms(settings: ServerSettings, requests: int, repeats: int) -> dict[str, list[float]]:
    """Per protocol, the median latency of each repeat."""
    rows = np.random.default_rng(0).random((1, 10), dtype=np.float32)
    result = {}
    for protocol, module, url in (("http", httpclient, settings.http_url.removeprefix("http://")),
                                  ("grpc", grpcclient, settings.grpc_url)):
        client = module.InferenceServerClient(url)
        tensor = module.InferInput("FEATURES", [1, 10], "FP32")
        tensor.set_data_from_numpy(rows)
        for _ in range(100):
            client.infer(MODEL, [tensor])
        result[protocol] = []
        for _ in range(repeats):
            latencies = []
            for _ in range(requests):
                start = time.perf_counter()
                client.infer(MODEL, [tensor])
                latencies.append((time.perf_counter() - start) * 1000)
            result[protocol].append(round(statistics.median(latencies), 3))
        client.close()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    results = {}
    log_dir = Path(tempfile.mkdtemp(prefix="tritonkit-front-cost-"))
    for front in (True, False):
        http, grpc, metrics = free_ports(3)
        settings = ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics,
                                  http_guard=front, repositories=(paths.model_repository(),))
        name = "front" if front else "direct"
        print(f"{name}: starting the server...", file=sys.stderr, flush=True)
        with TritonServer(settings, log_path=log_dir / f"{name}.log"):
            results[name] = medians_ms(settings, args.requests, args.repeats)
    results["added_ms"] = {protocol: round(statistics.median(results["front"][protocol])
                                           - statistics.median(results["direct"][protocol]), 3)
                           for protocol in ("http", "grpc")}
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
