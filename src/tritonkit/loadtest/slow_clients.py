"""``python -m tritonkit.loadtest.slow_clients``: do clients that trickle their bodies deny service to the others?

It starts the embedded server on loopback (``TritonServer``, the front in place), times ``--requests`` sequential
good requests to ``--model`` alone, then opens ``--connections`` sockets that each send the headers of an inference
request and one byte of its 100-byte body and then nothing, and times the same good requests while they hang. Last
it reads what the slow sockets are answered once the front's body deadline (``BODY_TIMEOUT_S``) has passed. It
writes ``SLOW_CLIENTS.md`` and ``slow_clients.json`` into ``--out`` and exits 1 when a good request failed while the
slow clients held their connections.

Before the front read a body within a deadline (issue 37), 400 such clients made every good request a 503 in 6 ms:
admission counted a request before its body had arrived.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tritonkit import paths
from tritonkit.loadtest.soak import machine, own_server
from tritonkit.server import logs
from tritonkit.server.front.http_guard import BODY_TIMEOUT_S
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer

GOOD = {  # one row of each tabular model's features
    "diabetes_regressor": {"name": "FEATURES", "shape": [1, 10], "datatype": "FP32", "data": [0.01] * 10},
    "cancer_classifier": {"name": "FEATURES", "shape": [1, 30], "datatype": "FP32", "data": [0.5] * 30},
}
SLOW_BODY_BYTES = 100  # what each slow client announces; it sends one of them
READ_SAMPLE = 20  # slow sockets whose answer is read after the deadline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.loadtest.slow_clients",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--connections", type=int, default=400, help="slow clients, each on its own connection")
    parser.add_argument("--requests", type=int, default=200, help="good requests timed alone and among them")
    parser.add_argument("--model", choices=sorted(GOOD), default="diabetes_regressor")
    parser.add_argument("--out", type=Path, help="where SLOW_CLIENTS.md and slow_clients.json go (default: "
                        "bench/results/)")
    return parser.parse_args(argv)


def good_requests(settings: ServerSettings, model: str, count: int) -> dict:
    """``count`` sequential requests: the statuses seen and the latency percentiles in ms."""
    body = json.dumps({"inputs": [GOOD[model]]}).encode()
    url = f"{settings.http_url}/v2/models/{model}/infer"
    statuses: dict[str, int] = {}
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=30) as answer:
                status = answer.status
                answer.read()
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0  # no answer at all
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ordered = sorted(latencies)
    return {"statuses": statuses, "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


def open_slow(settings: ServerSettings, model: str, count: int) -> list[socket.socket]:
    head = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: {settings.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {SLOW_BODY_BYTES}\r\n\r\n{{").encode()
    opened = []
    for _ in range(count):
        client = socket.create_connection((settings.host, settings.http_port), timeout=BODY_TIMEOUT_S + 20)
        client.sendall(head)
        opened.append(client)
    return opened


def measure(args: argparse.Namespace, settings: ServerSettings) -> dict:
    alone = good_requests(settings, args.model, args.requests)
    opened_at = time.monotonic()
    slow = open_slow(settings, args.model, args.connections)
    try:
        time.sleep(0.5)
        among = good_requests(settings, args.model, args.requests)
        held_s = time.monotonic() - opened_at
        answers = {}
        for client in slow[:READ_SAMPLE]:  # each waits out the rest of its body deadline
            try:
                first = client.recv(64).decode(errors="replace").split("\r\n", 1)[0]
            except OSError as error:
                first = f"no answer ({type(error).__name__})"
            answers[first] = answers.get(first, 0) + 1
        answered_after_s = time.monotonic() - opened_at
    finally:
        for client in slow:
            client.close()
    return {"alone": alone, "among_slow": among, "held_s": round(held_s, 1), "slow_answers": answers,
            "slow_answered_after_s": round(answered_after_s, 1)}


def markdown(report: dict) -> str:
    alone, among = report["alone"], report["among_slow"]
    answers = ", ".join(f"{count} x `{line}`" for line, count in sorted(report["slow_answers"].items()))
    return (f"# Slow clients: {report['connections']} connections trickling their bodies\n\n"
            f"Command: `{report['command']}`. Machine: {report['machine']}. {report['date']}.\n\n"
            f"Each slow client sends the headers of a `{report['model']}` inference request announcing a "
            f"{SLOW_BODY_BYTES}-byte body, one byte of it, then nothing. Good requests are sequential, from one "
            "client, over HTTP to the front.\n\n"
            "| good requests | answers | p50 | p99 |\n|---|---|---|---|\n"
            f"| alone | {_statuses(alone)} | {alone['p50_ms']} ms | {alone['p99_ms']} ms |\n"
            f"| while {report['connections']} slow clients hold their connections | {_statuses(among)} | "
            f"{among['p50_ms']} ms | {among['p99_ms']} ms |\n\n"
            f"The slow clients, {READ_SAMPLE} of them read: {answers}, {report['slow_answered_after_s']} s after they "
            f"connected (the front's body deadline is {report['body_timeout_s']:g} s).\n")


def _statuses(sample: dict) -> str:
    return ", ".join(f"{count} x {status}" for status, count in sorted(sample["statuses"].items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    out = args.out or paths.bench_results()
    settings, started = own_server()
    log = out / "slow-clients-server.log"
    with TritonServer(settings, log_path=log):
        result = measure(args, settings)
    log.unlink(missing_ok=True)
    given = " ".join(argv if argv is not None else sys.argv[1:])
    report = {"command": f"python -m tritonkit.loadtest.slow_clients {given}".strip(),
              "date": started, "machine": machine(), "connections": args.connections, "model": args.model,
              "body_timeout_s": BODY_TIMEOUT_S, **result}
    (out / "slow_clients.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "SLOW_CLIENTS.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if set(result["among_slow"]["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
