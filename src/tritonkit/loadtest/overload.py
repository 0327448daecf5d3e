"""``python -m tritonkit.loadtest.overload``: does overload get fast, retryable refusals instead of timeouts?

Two phases against a running server, for one public endpoint or each in turn (``--endpoint all``):
  1. capacity: a closed loop at ``--concurrency`` for ``--capacity-seconds``; its throughput is the capacity;
  2. overload: an open loop (requests sent on a fixed schedule, whatever the answers) at ``--factor`` times the
     capacity for ``--seconds``.
It prints one JSON object per endpoint: the capacity, and for the overload the accepted requests' latency
percentiles, the refusals' (HTTP 503 from the front's admission or a full queue) latency percentiles, and every
other outcome counted. The client sends each request once (no retry), so every refusal is seen. Requests are
encoded once, up front (the binary-tensor body tritonclient builds), so the generator's own work per request is one
HTTP post; the report gives how late requests left against the schedule, which says whether the overload really arrived.
``--report PATH`` also writes the results as Markdown with the machine and the command
(``bench/results/OVERLOAD.md`` is the committed run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from tritonclient.utils import np_to_triton_dtype

from tritonkit import catalog
from tritonkit.client.codec import images_input, rows_input, texts_input
from tritonkit.client.health import wait_until_ready
from tritonkit.loadtest import workload
from tritonkit.loadtest.soak import machine

REFUSALS = (b"is overloaded", b"Exceeds maximum queue size")  # the front's admission, then Triton's full queue
LATE_LIMIT_MS = 100  # requests leaving later than this behind schedule: the overload did not arrive as planned
Inputs = Callable[[int], dict[str, np.ndarray]]


def _texts() -> Inputs:
    texts = workload.sentences()
    return lambda index: texts_input(texts[index % len(texts)])


def _images() -> Inputs:
    images = workload.digit_images()
    return lambda index: images_input(images[index % len(images)])


def _rows(dataset: str) -> Callable[[], Inputs]:
    def inputs() -> Inputs:
        rows = workload.tabular_rows()[dataset]
        return lambda index: rows_input(rows[index % len(rows)], rows.shape[1])

    return inputs


# Every public endpoint and what its users send (workload.py: the shipped reviews, held-out digits, real rows).
ENDPOINTS: dict[str, Callable[[], Inputs]] = {
    **dict.fromkeys(catalog.SENTIMENT_ENDPOINTS, _texts), "text_embedding": _texts, "digit_classifier": _images,
    "diabetes_regressor": _rows("diabetes"), "cancer_classifier": _rows("cancer"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.loadtest.overload", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--url", default="127.0.0.1:8000", help="the server's HTTP host:port")
    parser.add_argument("--endpoint", default="text_sentiment", choices=(*ENDPOINTS, "all"),
                        help="the public endpoint to overload; 'all': each in turn")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="closed-loop clients while measuring capacity (enough to fill the batches)")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--factor", type=float, default=2.0, help="overload arrival rate, in capacities")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the open-loop overload")
    parser.add_argument("--report", type=Path, help="also write the results as Markdown here")
    return parser.parse_args(argv)


class Sender:
    """Posts one endpoint's requests, encoded once (``VARIETY`` distinct ones, cycled), and names each outcome."""

    VARIETY = 256

    def __init__(self, session: ClientSession, url: str, endpoint: str, inputs: Inputs):
        self.session, self.url = session, f"http://{url}/v2/models/{endpoint}/infer"
        self.bodies = [_encode(inputs(index)) for index in range(self.VARIETY)]

    async def send(self, index: int) -> str:
        """``accepted``, ``refused`` (a full queue) or what else happened."""
        body, headers = self.bodies[index % len(self.bodies)]
        try:
            async with self.session.post(self.url, data=body, headers=headers) as answer:
                payload = await answer.read()
        except (ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:120]
        if answer.status == 200:
            return "accepted"
        if answer.status == 503 and any(refusal in payload for refusal in REFUSALS):
            return "refused"
        return f"HTTP {answer.status}: {payload[:100].decode(errors='replace')}"


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

    tasks, start = [], time.monotonic()
    for index in range(int(rate * seconds)):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        lateness.append((time.monotonic() - due) * 1000)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    return summarize(outcomes, rate, seconds, lateness)


def summarize(outcomes: list[tuple[str, float]], rate: float, seconds: float,
              lateness_ms: list[float] | None = None) -> dict:
    kinds: dict[str, list[float]] = {}
    for kind, latency_ms in outcomes:
        kinds.setdefault(kind, []).append(latency_ms)
    return {
        "rate_per_s": round(rate, 1), "seconds": seconds, "sent": len(outcomes),
        "sent_late_ms": _percentiles(lateness_ms or []),
        "accepted": _percentiles(kinds.pop("accepted", [])), "refused": _percentiles(kinds.pop("refused", [])),
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


async def run_one(session: ClientSession, endpoint: str, args: argparse.Namespace) -> dict:
    sender = Sender(session, args.url, endpoint, ENDPOINTS[endpoint]())
    measured = await capacity(sender, args.concurrency, args.capacity_seconds)
    print(f"{endpoint}: capacity {measured:.1f} req/s; overload at {args.factor:g}x for {args.seconds:g} s...",
          file=sys.stderr, flush=True)
    result = await overload(sender, measured * args.factor, args.seconds)
    return {"endpoint": endpoint, "capacity_per_s": round(measured, 1), "factor": args.factor, **result}


async def run(args: argparse.Namespace) -> list[dict]:
    endpoints = list(ENDPOINTS) if args.endpoint == "all" else [args.endpoint]
    wait_until_ready(f"http://{args.url}", 60)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # an open loop holds a socket per request in flight
    connector = TCPConnector(limit=max(64, hard - 64))
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=60)) as session:
        return [await run_one(session, endpoint, args) for endpoint in endpoints]


def markdown(results: list[dict], command: str) -> str:
    """The committed report: one row per endpoint."""
    rows = ["| endpoint | capacity | overload rate | sent late p99 | accepted | accepted p50 / p99 / max | refused | "
            "refusal p50 / p99 / max | other outcomes |", "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        accepted, refused = result["accepted"], result["refused"]
        other = ", ".join(f"{kind}: {count}" for kind, count in result["other"].items()) or "none"
        late = result["sent_late_ms"]
        mark = " (*)" if late.get("p99_ms", 0) > LATE_LIMIT_MS else ""
        rows.append(f"| `{result['endpoint']}`{mark} | {result['capacity_per_s']} req/s | "
                    f"{result['rate_per_s']} req/s | {late.get('p99_ms', 0):.0f} ms | "
                    f"{accepted['count']} of {result['sent']} | {_triple(accepted)} | "
                    f"{refused['count']} | {_triple(refused)} | {other} |")
    return (f"# Overload: every public endpoint at {results[0]['factor']:g}x its capacity\n\n"
            f"Command (server running): `{command}`. Machine: {machine()} for the load generator, of "
            f"{os.cpu_count()} in all (pin the server and the generator apart with taskset). "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
            "Capacity: a closed loop of concurrent clients; then an open loop (requests leave on schedule, no retry) "
            "at the overload rate. A refusal is HTTP 503 from the front's admission (\"is overloaded\") or from a full "
            "queue (\"Exceeds maximum queue size\").\n\n"
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
