"""``python -m tritonkit.loadtest.overload``: does overload get fast, retryable refusals instead of timeouts?

Two phases against a running server, for one public endpoint or each in turn (``--endpoint all``):
  1. capacity: the most the server answers per second. A closed loop of as many clients as the front admits for
     the endpoint (its admission limit from the served configs, or ``--concurrency``), then an open loop at
     ``--factor`` times that, which saturates the server; the capacity is the larger of their accepted throughputs
     (each phase ``--capacity-seconds``);
  2. overload: an open loop (requests sent on a fixed schedule, whatever the answers) at ``--factor`` times the
     capacity for ``--seconds``.
It prints one JSON object per endpoint: the capacity, and for the overload the accepted requests' latency
percentiles, the refusals' (HTTP 503 from the front's admission or a full queue) latency percentiles, and every
other outcome counted (Triton's own queue refusals also there by name: they come late, after the steps before the
full queue worked on the request, and the front's admission should leave none). The client sends each request once
(no retry), so every refusal is seen. Requests are encoded once, up front (the binary-tensor body tritonclient
builds), so the generator's own work per request is one HTTP post; the report gives how late requests left against
the schedule, which says whether the overload really arrived.
``--report PATH`` also writes the results as Markdown with the machine and the command
(``bench/results/OVERLOAD.md`` is the committed run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import np_to_triton_dtype

from tritonkit import catalog
from tritonkit.client.codec import images_input, recommendation_input, rows_input, texts_input
from tritonkit.client.health import wait_until_ready
from tritonkit.loadtest import workload
from tritonkit.loadtest.soak import machine

ADMISSION_REFUSAL = b"is overloaded"  # the front's admission, before tritonserver sees the request
QUEUE_REFUSAL = b"Exceeds maximum queue size"  # Triton's full queue: behind the front, it should never come
QUEUE_REFUSED = "refused by Triton's full queue"
DEFAULT_CONCURRENCY = 32
LATE_LIMIT_MS = 100  # requests leaving later than this behind schedule: the overload did not arrive as planned
Inputs = Callable[[int], dict[str, np.ndarray]]


def _texts() -> Inputs:
    texts = workload.sentences()
    return lambda index: texts_input(texts[index % len(texts)])


def _images() -> Inputs:
    images = workload.digit_images()
    return lambda index: images_input(images[index % len(images)])


def _movie_users() -> Inputs:
    users = workload.movie_users()
    return lambda index: recommendation_input(users[index * 7 % len(users)], 10)  # a known user's top 10


def _rows(dataset: str) -> Callable[[], Inputs]:
    def inputs() -> Inputs:
        rows = workload.tabular_rows()[dataset]
        return lambda index: rows_input(rows[index % len(rows)], rows.shape[1])

    return inputs


# Every public endpoint and what its users send (workload.py: the shipped reviews, held-out digits, real rows,
# MovieLens users).
ENDPOINTS: dict[str, Callable[[], Inputs]] = {
    **dict.fromkeys((*catalog.SENTIMENT_ENDPOINTS, *catalog.EMBEDDING_ENDPOINTS), _texts), "digit_classifier": _images,
    "diabetes_regressor": _rows("diabetes"), "cancer_classifier": _rows("cancer"),
    catalog.RECOMMENDER_ENDPOINT: _movie_users,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.loadtest.overload", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--url", default="127.0.0.1:8000", help="the server's HTTP host:port")
    parser.add_argument("--endpoint", default="text_sentiment", choices=(*ENDPOINTS, "all"),
                        help="the public endpoint to overload; 'all': each in turn")
    parser.add_argument("--concurrency", type=int,
                        help="closed-loop clients of the first estimate (default: the endpoint's admission limit "
                        f"from the served configs; {DEFAULT_CONCURRENCY} without one)")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--factor", type=float, default=2.0, help="overload arrival rate, in capacities")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the open-loop overload")
    parser.add_argument("--report", type=Path, help="also write the results as Markdown here")
    return parser.parse_args(argv)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; answers carry Content-Length (as Triton's and the
    front's do). A tenth of aiohttp's client cost per request, so one core can send thousands a second on time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0 or self.answer is None or self.answer.done():
            return
        head = bytes(self.buffer[:head_end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        if len(self.buffer) < head_end + 4 + length:
            return
        body = bytes(self.buffer[head_end + 4:head_end + 4 + length])
        del self.buffer[:head_end + 4 + length]
        self.answer.set_result((int(head[9:12]), body))
        if b"connection: close" in head:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionResetError("the server closed the connection"))


class Sender:
    """Posts one endpoint's requests, encoded once (``VARIETY`` distinct ones, cycled, as whole HTTP messages), and
    names each outcome."""

    VARIETY = 256

    def __init__(self, url: str, endpoint: str, inputs: Inputs, timeout_s: float = 60.0):
        self.host, _, port = url.rpartition(":")
        self.port, self.timeout_s = int(port), timeout_s
        self.idle: list[_Connection] = []
        self.messages = [_message(url, endpoint, *_encode(inputs(index))) for index in range(self.VARIETY)]

    async def send(self, index: int) -> str:
        """``accepted``, ``refused`` (by the front's admission), ``QUEUE_REFUSED`` or what else happened."""
        loop = asyncio.get_running_loop()
        connection = None
        try:
            while self.idle and self.idle[-1].transport is None:
                self.idle.pop()
            connection = self.idle.pop() if self.idle else (
                await loop.create_connection(_Connection, self.host, self.port))[1]
            connection.answer = loop.create_future()
            connection.transport.write(self.messages[index % len(self.messages)])
            status, payload = await asyncio.wait_for(connection.answer, self.timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            if connection is not None and connection.transport is not None:
                connection.transport.close()  # an answer may still come: the connection cannot be reused
            return f"{type(exc).__name__}: {exc}"[:120]
        if connection.transport is not None:
            self.idle.append(connection)
        if status == 200:
            return "accepted"
        if status == 503 and ADMISSION_REFUSAL in payload:
            return "refused"
        if status == 503 and QUEUE_REFUSAL in payload:
            return QUEUE_REFUSED
        return f"HTTP {status}: {payload[:100].decode(errors='replace')}"

    def close(self) -> None:
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()


def _message(url: str, endpoint: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST /v2/models/{endpoint}/infer HTTP/1.1", f"Host: {url}", f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _encode(tensors: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    inputs = []
    for name, array in tensors.items():
        tensor = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array, binary_data=True)
        inputs.append(tensor)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs)
    headers = {"Content-Type": "application/octet-stream"}
    if json_size is not None:
        headers["Inference-Header-Content-Length"] = str(json_size)
    return body, headers


async def capacity(sender: Sender, concurrency: int, seconds: float) -> float:
    """Requests per second a closed loop of ``concurrency`` clients gets answered (refusals do not count)."""
    done, deadline = 0, time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        index = offset
        while time.monotonic() < deadline:
            accepted = await sender.send(index) == "accepted"
            done, index = done + accepted, index + concurrency

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.monotonic() - start)


async def overload(sender: Sender, rate: float, seconds: float) -> dict:
    """An open loop at ``rate`` requests per second: each request leaves on schedule, answered or not."""
    outcomes: list[tuple[str, float]] = []
    lateness: list[float] = []

    async def one(index: int) -> None:
        begin = time.perf_counter()
        kind = await sender.send(index)
        outcomes.append((kind, (time.perf_counter() - begin) * 1000))

    # The cyclic collector walks every task and outcome kept so far: tens of thousands of them make its full passes
    # take tens of milliseconds, a pause that would be counted as the server's latency. A run this short can keep
    # its garbage until the end.
    gc.collect()
    gc.disable()
    tasks, start = [], time.monotonic()
    for index in range(int(rate * seconds)):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        lateness.append((time.monotonic() - due) * 1000)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    gc.enable()
    return summarize(outcomes, rate, seconds, lateness)


def summarize(outcomes: list[tuple[str, float]], rate: float, seconds: float,
              lateness_ms: list[float] | None = None) -> dict:
    kinds: dict[str, list[float]] = {}
    for kind, latency_ms in outcomes:
        kinds.setdefault(kind, []).append(latency_ms)
    return {
        "rate_per_s": round(rate, 1), "seconds": seconds, "sent": len(outcomes),
        "sent_late_ms": _percentiles(lateness_ms or []),
        "accepted": _percentiles(kinds.pop("accepted", [])),
        "refused": _percentiles(kinds.pop("refused", []) + kinds.get(QUEUE_REFUSED, [])),
        "other": {kind: len(latencies) for kind, latencies in kinds.items()},
    }


def _percentiles(latencies_ms: list[float]) -> dict:
    if not latencies_ms:
        return {"count": 0}
    ordered = sorted(latencies_ms)

    def pick(quantile: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))], 1)

    return {"count": len(ordered), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "max_ms": round(ordered[-1], 1), "mean_ms": round(statistics.fmean(ordered), 1)}


async def run_one(endpoint: str, args: argparse.Namespace) -> dict:
    sender = Sender(args.url, endpoint, ENDPOINTS[endpoint]())
    concurrency = args.concurrency or served_limits().get(endpoint, DEFAULT_CONCURRENCY)
    closed = await capacity(sender, concurrency, args.capacity_seconds)
    # A closed loop can leave a pipeline short of work between an answer and the next request (digits answer twice
    # as much saturated), and an open loop costs the server its refusals (the tabular models, where the Python front
    # is the bottleneck, answer less saturated): the capacity is the larger of the two.
    saturated = await overload(sender, closed * args.factor, args.capacity_seconds)
    measured = max(closed, saturated["accepted"]["count"] / args.capacity_seconds)
    print(f"{endpoint}: capacity {measured:.1f} req/s (closed loop of {concurrency}: {closed:.1f}); overload at "
          f"{args.factor:g}x for {args.seconds:g} s...", file=sys.stderr, flush=True)
    result = await overload(sender, measured * args.factor, args.seconds)
    sender.close()
    return {"endpoint": endpoint, "capacity_per_s": round(measured, 1), "closed_loop_per_s": round(closed, 1),
            "factor": args.factor, **result}


def served_limits() -> dict[str, int]:
    """The front's admission limits of the checkout's repositories (none outside a checkout)."""
    from tritonkit import paths
    from tritonkit.server.front import admission

    try:
        return admission.limits(paths.repositories())
    except paths.ProjectNotFound:
        return {}


async def run(args: argparse.Namespace) -> list[dict]:
    endpoints = list(ENDPOINTS) if args.endpoint == "all" else [args.endpoint]
    wait_until_ready(f"http://{args.url}", 60)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # an open loop holds a socket per request in flight
    return [await run_one(endpoint, args) for endpoint in endpoints]


def markdown(results: list[dict], command: str) -> str:
    """The committed report: one row per endpoint."""
    rows = ["| endpoint | capacity (closed loop) | overload rate | sent late p99 | accepted | "
            "accepted p50 / p99 / max | refused | refusal p50 / p99 / max | other outcomes |",
            "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        accepted, refused = result["accepted"], result["refused"]
        other = ", ".join(f"{kind}: {count}" for kind, count in result["other"].items()) or "none"
        late = result["sent_late_ms"]
        mark = " (*)" if late.get("p99_ms", 0) > LATE_LIMIT_MS else ""
        rows.append(f"| `{result['endpoint']}`{mark} | {result['capacity_per_s']} req/s "
                    f"({result['closed_loop_per_s']}) | {result['rate_per_s']} req/s | "
                    f"{late.get('p99_ms', 0):.0f} ms | "
                    f"{accepted['count']} of {result['sent']} | {_triple(accepted)} | "
                    f"{refused['count']} | {_triple(refused)} | {other} |")
    return (f"# Overload: every public endpoint at {results[0]['factor']:g}x its capacity\n\n"
            f"Command (server running): `{command}`. Machine: {machine()} for the load generator, of "
            f"{os.cpu_count()} in all (pin the server and the generator apart with taskset). "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
            "Capacity: the most the server answered per second, in a closed loop of as many clients as the front "
            "admits (in brackets) or saturated by an open loop at twice that; then an open loop (requests leave on "
            "schedule, no retry) at the overload rate. A refusal is HTTP 503 from the front's admission "
            "(\"is overloaded\") or from a full queue (\"Exceeds maximum queue size\").\n\n"
            + "\n".join(rows) + "\n"
            + (f"\n(*) Requests left more than {LATE_LIMIT_MS} ms behind schedule (p99): the generator and the server "
               "ran out of CPU between them, so the overload did not arrive as an open loop and the row is not a "
               "valid measurement of the server.\n" if "(*)" in "".join(rows) else ""))


def _triple(stats: dict) -> str:
    return f"{stats['p50_ms']:.0f} / {stats['p99_ms']:.0f} / {stats['max_ms']:.0f} ms" if stats["count"] else "—"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(run(args))
    print(json.dumps(results if len(results) > 1 else results[0], indent=1))
    if args.report is not None:
        command = "python -m tritonkit.loadtest.overload " + " ".join(sys.argv[1:] if argv is None else argv)
        args.report.write_text(markdown(results, command.strip()))
        print(f"wrote {args.report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
