"""``python -m tritonkit.loadtest.soak``: a bounded soak. Does memory stay flat under long mixed load?

It starts the embedded server (``TritonServer``), sends a mixed load (every public endpoint, real inputs) from
``--concurrency`` asyncio clients (half over HTTP, half over gRPC) for ``--minutes``, and samples the resident
memory (VmRSS) of tritonserver, of the front and of every Python stub every ``--sample-seconds``. Growth is
measured from the first sample after ``--warmup-minutes`` (allocators and caches settle first) to the last. It
writes ``soak.json`` and ``SOAK.md`` into ``--out`` and exits 1 when any process grew by more than
``--max-growth-percent``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tritonkit import paths
from tritonkit.client import AsyncClient
from tritonkit.loadtest import workload
from tritonkit.server import logs
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer
from tritonkit.server.supervisor.procfs import stubs_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.loadtest.soak", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--warmup-minutes", type=float, default=1.0, help="load before the baseline sample")
    parser.add_argument("--concurrency", type=int, default=4, help="asyncio clients sending back to back")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--max-growth-percent", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="where soak.json and SOAK.md go (default: bench/results/)")
    return parser.parse_args(argv)


def own_server() -> tuple[ServerSettings, str]:
    """Settings for a server of this run's own on free loopback ports (the environment's admin key), and the UTC
    time it starts, as the reports write it."""
    http, grpc, metrics = free_ports(3)
    return (ServerSettings.from_env(http_port=http, grpc_port=grpc, metrics_port=metrics),
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def machine() -> str:
    """The CPU model, its vector extensions that matter here, and the cores, from /proc/cpuinfo."""
    info = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vector = "AVX-512 VNNI" if "avx512_vnni" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    cores = len(os.sched_getaffinity(0))
    return f"{model} ({vector}), {cores} core{'s' if cores != 1 else ''}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample(server_pid: int, front_pid: int | None = None) -> dict[str, float]:
    """RSS per process: tritonserver, the front (server/front/) and each stub (named by model and instance pid)."""
    values = {"tritonserver": rss_mib(server_pid)}
    if front_pid is not None:
        values["front (HTTP and gRPC)"] = rss_mib(front_pid)
    for stub in stubs_of(server_pid):
        values[f"{stub.model} v{stub.version} (pid {stub.pid})"] = rss_mib(stub.pid)
    return values


async def load(settings: ServerSettings, running: Callable[[], bool], concurrency: int, counts: dict[str, int],
               failures: list[dict] | None = None) -> None:
    """``concurrency`` workers, half over HTTP and half over gRPC, cycling through every public endpoint while
    ``running()``. ``counts`` gets the answers per endpoint and the errors (after the client's retries) per type;
    ``failures``, when given, each error: when (monotonic), endpoint, protocol and message."""
    texts, images, rows = workload.texts(), workload.digit_images(), workload.tabular_rows()
    calls = [
        ("text_sentiment", lambda c, i: c.sentiment(texts[i % len(texts)])),
        ("lstm_sentiment", lambda c, i: c.sentiment(texts[i % len(texts)], model="lstm_sentiment")),
        ("text_embedding", lambda c, i: c.embed(texts[i % len(texts)])),
        ("digit_classifier", lambda c, i: c.classify_digit([images[i % len(images)]])),
        ("diabetes_regressor", lambda c, i: c.predict_diabetes(rows["diabetes"][i % 40 : i % 40 + 1])),
        ("cancer_classifier", lambda c, i: c.predict_cancer(rows["cancer"][i % 100 : i % 100 + 1])),
    ]
    async with AsyncClient(settings.http_url, protocol="http", timeout_s=60) as http, \
            AsyncClient(settings.grpc_url, protocol="grpc", timeout_s=60) as grpc:  # the default retries

        async def worker(offset: int) -> None:
            client, index = (http, grpc)[offset % 2], offset
            while running():
                name, call = calls[index % len(calls)]
                try:
                    await call(client, index)
                    counts[name] = counts.get(name, 0) + 1
                except Exception as exc:
                    counts[f"error {type(exc).__name__}"] = counts.get(f"error {type(exc).__name__}", 0) + 1
                    if failures is not None:
                        failures.append({"at": time.monotonic(), "endpoint": name,
                                         "protocol": ("http", "grpc")[offset % 2], "error": str(exc)[:300]})
                index += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))


async def soak(args: argparse.Namespace, server: TritonServer) -> dict:
    start = time.monotonic()
    deadline = start + args.minutes * 60
    counts: dict[str, int] = {}
    samples: list[dict] = []
    traffic = asyncio.create_task(load(server.settings, lambda: time.monotonic() < deadline, args.concurrency, counts))
    front = server.processes[1].pid if len(server.processes) > 1 else None
    while time.monotonic() < deadline:
        samples.append({"t_s": round(time.monotonic() - start, 1), "rss_mib": sample(server.pid, front)})
        print(f"[{samples[-1]['t_s']:.0f} s] {sum(counts.values())} requests, tritonserver "
              f"{samples[-1]['rss_mib']['tritonserver']:.0f} MiB", file=sys.stderr, flush=True)
        await asyncio.sleep(args.sample_seconds)
    await traffic
    samples.append({"t_s": round(time.monotonic() - start, 1), "rss_mib": sample(server.pid, front)})
    return {"counts": counts, "samples": samples}


def growth(samples: list[dict], warmup_s: float) -> dict[str, dict]:
    """Per process: RSS at the baseline (first sample after the warm-up) and at the end, and the growth."""
    baseline = next(s for s in samples if s["t_s"] >= warmup_s)
    result = {}
    for name, start in baseline["rss_mib"].items():
        end = samples[-1]["rss_mib"].get(name)
        if end is not None and start > 0:
            result[name] = {"baseline_mib": round(start, 1), "end_mib": round(end, 1),
                            "growth_percent": round((end - start) / start * 100, 2)}
    return result


def markdown(report: dict) -> str:
    lines = [f"# Soak: {report['minutes']:g} minutes of mixed load", "",
             f"Command: `{report['command']}`. Machine: {report['machine']}. {report['date']}.", "",
             f"Requests: {sum(v for k, v in report['counts'].items() if not k.startswith('error'))} answered, "
             f"errors: {({k: v for k, v in report['counts'].items() if k.startswith('error')}) or 'none'}.", "",
             f"Resident memory from the first sample after {report['warmup_minutes']:g} min of load to the last "
             f"(limit {report['max_growth_percent']:g} %):", "",
             "| process | baseline MiB | end MiB | growth |", "|---|---|---|---|"]
    for name, row in sorted(report["growth"].items(), key=lambda item: -item[1]["growth_percent"]):
        lines.append(f"| {name} | {row['baseline_mib']} | {row['end_mib']} | {row['growth_percent']:+.2f} % |")
    start, end = (sum(row[key] for row in report["growth"].values()) for key in ("baseline_mib", "end_mib"))
    if start > 0:  # what the server costs on a host: every model loaded, under load
        lines.append(f"| **all {len(report['growth'])} processes** | {start:.1f} | {end:.1f} | "
                     f"{(end - start) / start * 100:+.2f} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    out = args.out or paths.bench_results()
    settings, started = own_server()
    with TritonServer(settings, log_path=out / "soak-server.log") as server:
        result = asyncio.run(soak(args, server))
    (out / "soak-server.log").unlink(missing_ok=True)
    report = {"command": "python -m tritonkit.loadtest.soak " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": started, "machine": machine(),
              "minutes": args.minutes, "warmup_minutes": args.warmup_minutes,
              "max_growth_percent": args.max_growth_percent, **result,
              "growth": growth(result["samples"], args.warmup_minutes * 60)}
    (out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "SOAK.md").write_text(markdown(report))
    print(markdown(report))
    worst = max(row["growth_percent"] for row in report["growth"].values())
    return 1 if worst > args.max_growth_percent else 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
