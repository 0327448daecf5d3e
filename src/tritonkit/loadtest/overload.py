"""``python -m tritonkit.loadtest.overload``: does overload get fast, retryable refusals instead of timeouts?

Two phases against a running server, one endpoint:
  1. capacity: a closed loop at ``--concurrency`` for ``--capacity-seconds``; its throughput is the capacity;
  2. overload: an open loop (requests sent on a fixed schedule, whatever the answers) at ``--factor`` times the
     capacity for ``--seconds``.
It prints one JSON object: the capacity, and for the overload the accepted requests' latency percentiles, the
refusals' (HTTP 503 "Exceeds maximum queue size") latency percentiles, and every other outcome counted. The
client sends each request once (no retry), so every refusal is seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

from tritonkit.client import AsyncClient, ServerUnavailable
from tritonkit.client.codec import texts_input
from tritonkit.loadtest.workload import sentences

REFUSAL = "Exceeds maximum queue size"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.loadtest.overload", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--url", default="127.0.0.1:8000", help="the server's HTTP host:port")
    parser.add_argument("--endpoint", default="text_sentiment", choices=("text_sentiment", "lstm_sentiment"))
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients while measuring capacity")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--factor", type=float, default=2.0, help="overload arrival rate, in capacities")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the open-loop overload")
    return parser.parse_args(argv)


async def capacity(client: AsyncClient, endpoint: str, texts: list[str], concurrency: int, seconds: float) -> float:
    """Requests per second a closed loop of ``concurrency`` clients gets answered."""
    done, deadline = 0, time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        index = offset
        while time.monotonic() < deadline:
            await client.infer(endpoint, texts_input(texts[index % len(texts)]))
            done, index = done + 1, index + concurrency

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.monotonic() - start)


async def overload(client: AsyncClient, endpoint: str, texts: list[str], rate: float, seconds: float) -> dict:
    """An open loop at ``rate`` requests per second: each request leaves on schedule, answered or not."""
    outcomes: list[tuple[str, float]] = []

    async def one(index: int) -> None:
        start = time.perf_counter()
        try:
            await client.infer(endpoint, texts_input(texts[index % len(texts)]))
            kind = "accepted"
        except ServerUnavailable as exc:
            kind = "refused" if REFUSAL in str(exc) else f"unavailable: {exc}"[:120]
        except Exception as exc:
            kind = f"{type(exc).__name__}: {exc}"[:120]
        outcomes.append((kind, (time.perf_counter() - start) * 1000))

    tasks, start = [], time.monotonic()
    for index in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    return summarize(outcomes, rate, seconds)


def summarize(outcomes: list[tuple[str, float]], rate: float, seconds: float) -> dict:
    kinds: dict[str, list[float]] = {}
    for kind, latency_ms in outcomes:
        kinds.setdefault(kind, []).append(latency_ms)
    return {
        "rate_per_s": round(rate, 1), "seconds": seconds, "sent": len(outcomes),
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


async def run(args: argparse.Namespace) -> dict:
    texts = list(sentences())
    async with AsyncClient(args.url, protocol="http", retries=0, timeout_s=60) as client:
        await client.wait_until_ready(60)
        measured = await capacity(client, args.endpoint, texts, args.concurrency, args.capacity_seconds)
        print(f"capacity: {measured:.1f} req/s; overload at {args.factor:g}x for {args.seconds:g} s...",
              file=sys.stderr, flush=True)
        result = await overload(client, args.endpoint, texts, measured * args.factor, args.seconds)
    return {"endpoint": args.endpoint, "capacity_per_s": round(measured, 1), "factor": args.factor, **result}


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(asyncio.run(run(parse_args(argv))), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
