"""``python -m tritonkit.bench.perf`` (``make perf``): Triton's own perf_analyzer against the running server.

For each public endpoint, over HTTP and gRPC, perf_analyzer sends the same real inputs our load tests send
(``loadtest/workload.py``: the shipped reviews, held-out digits as encoded images, real tabular rows), written
once as its ``--input-data`` JSON, at each concurrency of ``--concurrency``. It reads each model's config, which the
admin APIs guard, so it gets the admin key as a header. Results go to ``reports/perf/``: perf_analyzer's CSV per
endpoint and protocol, and ``PERF.md`` with throughput and latency percentiles per row.

perf_analyzer 2.51.0 is the binary the ``tritonclient==2.51.0`` manylinux wheel carries (later wheels need a newer
glibc or ship none); its pins clash with the project's ``tritonclient``, so it is installed into a virtual
environment of its own under ``.triton/perf/`` by ``make tools`` (about 20 s). It links ``libb64.so.0d`` and
``libcudart.so.12`` (no GPU is used), which the ``nvidia-pytriton`` wheel already carries under renamed files;
``.triton/perf/lib`` links them under their plain names, and ``.triton/perf/bin/perf_analyzer`` runs the binary with
them on ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tritonkit import catalog, tools
from tritonkit.client.health import ServerNotReady, wait_until_ready
from tritonkit.loadtest.overload import ENDPOINTS
from tritonkit.loadtest.soak import machine
from tritonkit.server.settings import ADMIN_HEADER, GRPC_ADMIN_HEADER, ServerSettings
from tritonkit.server.supervisor import embedded

LIBRARIES = {"libb64.so.0d": "libb64-*.so.0d", "libcudart.so.12": "libcudart-*.so.12*"}
SAMPLES = 32  # distinct inputs per endpoint, cycled by perf_analyzer
PROTOCOLS = ("http", "grpc")
# Endpoints our load generator (bench/loadgen.py: one BYTES input, LABEL and PROBABILITIES out) can drive too.
COMPARABLE = {**dict.fromkeys(catalog.SENTIMENT_ENDPOINTS, "TEXT"), "digit_classifier": "IMAGE"}


def ensure_perf_analyzer() -> Path:
    """A perf_analyzer that runs as it is (``.triton/perf/bin/perf_analyzer``, a wrapper that puts the libraries it
    links on ``LD_LIBRARY_PATH``, so Model Analyzer can run it too).

    Raises:
        ToolMissing: perf_analyzer is not installed (``make tools`` installs it).
    """
    binary = tools.require("perf-analyzer")
    directory = binary.parent.parent.parent  # .triton/perf/venv/bin/perf_analyzer
    lib = directory / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    carried = embedded.pytriton_libs()
    for name, pattern in LIBRARIES.items():
        found = sorted(carried.glob(pattern))
        if not found:
            raise FileNotFoundError(f"{pattern} is not in {carried}; fix: `make setup` (installs nvidia-pytriton)")
        link = lib / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(found[0])
    wrapper = directory / "bin" / "perf_analyzer"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH="{lib}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" '
                       f'exec "{binary}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def input_data(endpoint: str, samples: int = SAMPLES) -> dict:
    """perf_analyzer's ``--input-data`` JSON for ``endpoint``: ``samples`` real requests of one item each (the
    batch dimension left out, as perf_analyzer adds it)."""
    inputs = ENDPOINTS[endpoint]()
    return {"data": [{name: _tensor(array[0]) for name, array in inputs(index).items()} for index in range(samples)]}


def _tensor(row: np.ndarray) -> dict:
    if row.dtype == np.object_:  # BYTES: text as a string, anything else (an encoded image) as base64
        value = row.tolist()[0]
        try:
            return {"content": [value.decode("utf-8")], "shape": list(row.shape)}
        except UnicodeDecodeError:  # b64 is the raw tensor: Triton's BYTES layout, a 4-byte length before the bytes
            raw = struct.pack("<I", len(value)) + value
            return {"content": {"b64": base64.b64encode(raw).decode()}, "shape": list(row.shape)}
    values = row if np.issubdtype(row.dtype, np.integer) else row.astype(np.float32)  # ids stay integers
    return {"content": values.ravel().tolist(), "shape": list(row.shape)}


def command(binary: Path, endpoint: str, protocol: str, settings: ServerSettings, *, data: Path, csv_path: Path,
            concurrency: str, interval_ms: int) -> list[str]:
    """perf_analyzer's argv for one endpoint over one protocol (the admin key as a header)."""
    url = settings.http_url.removeprefix("http://") if protocol == "http" else settings.grpc_url
    header = ADMIN_HEADER if protocol == "http" else GRPC_ADMIN_HEADER
    return [str(binary), "-m", endpoint, "-u", url, "-i", protocol, "--input-data", str(data),
            "--concurrency-range", concurrency, "--measurement-interval", str(interval_ms), "--max-trials", "10",
            "--stability-percentage", "50", "-H", f"{header}:{settings.admin_key}", "-f", str(csv_path)]


def read_csv(path: Path) -> list[dict]:
    """perf_analyzer's rows: concurrency, throughput and client latency percentiles (ms)."""
    rows = []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            rows.append({"concurrency": int(row["Concurrency"]), "throughput": float(row["Inferences/Second"]),
                         **{key: float(row[f"p{key[1:3]} latency"]) / 1000 for key in ("p50_ms", "p95_ms", "p99_ms")}})
    return rows


def ours(endpoint: str, protocol: str, settings: ServerSettings, concurrency: int, seconds: float) -> dict:
    """Our bench's load generator, closed loop, on the same endpoint, inputs, protocol and concurrency."""
    import asyncio

    from tritonkit.bench import loadgen

    name = COMPARABLE[endpoint]
    inputs = ENDPOINTS[endpoint]()
    payloads = [inputs(index)[name][0][0] for index in range(SAMPLES)]
    url = settings.http_url.removeprefix("http://") if protocol == "http" else settings.grpc_url
    target = loadgen.TritonTarget("ours", protocol, url, endpoint, input_name=name, payloads=payloads,
                                  outputs=("LABEL", "PROBABILITIES"))

    async def measure() -> loadgen.Sample:
        await target.open()
        try:
            await loadgen.closed_loop(target, concurrency, 10**9, 1.0)  # warm-up, as perf_analyzer's first window
            return await loadgen.closed_loop(target, concurrency, 10**9, seconds)
        finally:
            await target.close()

    sample = asyncio.run(measure())
    if sample.errors:
        raise RuntimeError(f"our load generator got {sample.errors} errors on {endpoint}: {sample.first_error}")
    return {"throughput": sample.throughput, "p50_ms": sample.percentile(50), "p95_ms": sample.percentile(95)}


def merge(repeats: list[list[dict]]) -> list[dict]:
    """Per concurrency, the median of each figure over the repeats (perf_analyzer's and, where measured, ours);
    ``ratios`` keeps each repeat's perf_analyzer / ours, measured back to back."""
    merged = []
    for rows in zip(*repeats, strict=True):
        row = {"concurrency": rows[0]["concurrency"],
               **{key: statistics.median(r[key] for r in rows) for key in ("throughput", "p50_ms", "p95_ms", "p99_ms")}}
        if all("ours" in r for r in rows):
            row["ours"] = {key: statistics.median(r["ours"][key] for r in rows)
                           for key in ("throughput", "p50_ms", "p95_ms")}
            row["ratios"] = [r["throughput"] / r["ours"]["throughput"] for r in rows]
        merged.append(row)
    return merged


def markdown(results: dict[tuple[str, str], list[dict]], note: str) -> str:
    compared = any("ours" in row for rows in results.values() for row in rows)
    lines = ["# perf_analyzer against the running server", "", note, "",
             "| endpoint | protocol | concurrency | throughput | p50 / p95 / p99 |"
             + (" our load generator: throughput; p50 / p95 | perf_analyzer / ours |" if compared else ""),
             "|---|---|---|---|---|" + ("---|---|" if compared else "")]
    for (endpoint, protocol), rows in results.items():
        for row in rows:
            line = (f"| `{endpoint}` | {protocol} | {row['concurrency']} | {row['throughput']:.1f} req/s | "
                    f"{row['p50_ms']:.1f} / {row['p95_ms']:.1f} / {row['p99_ms']:.1f} ms |")
            if compared:
                other = row.get("ours")
                ratios = row.get("ratios", [])
                spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
                line += (f" {other['throughput']:.1f} req/s; {other['p50_ms']:.1f} / {other['p95_ms']:.1f} ms | "
                         f"{row['throughput'] / other['throughput']:.2f}x{spread} |" if other else " — | — |")
            lines.append(line)
    return "\n".join(lines) + "\n"


def measure(binary: Path, endpoint: str, protocol: str, *, settings: ServerSettings, args: argparse.Namespace,
            data: Path, repeat: int) -> list[dict] | None:
    """One perf_analyzer run over the concurrency range, then (``--compare``) ours at each of its points; None when
    perf_analyzer failed (said on stderr)."""
    suffix = f"-{repeat + 1}" if args.repeats > 1 else ""
    csv_path = args.out / f"{endpoint}-{protocol}{suffix}.csv"
    print(f"perf: {endpoint} over {protocol}, concurrency {args.concurrency}"
          f"{f', repeat {repeat + 1}/{args.repeats}' if args.repeats > 1 else ''}...", file=sys.stderr, flush=True)
    perf_argv = command(binary, endpoint, protocol, settings, data=data, csv_path=csv_path,
                        concurrency=args.concurrency, interval_ms=args.interval_ms)
    run = subprocess.run(perf_argv, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(f"error: perf_analyzer failed on {endpoint} over {protocol} (exit {run.returncode}):\n"
              f"{(run.stdout + run.stderr)[-2000:]}", file=sys.stderr)
        return None
    rows = read_csv(csv_path)
    if args.compare and endpoint in COMPARABLE:
        for row in rows:
            print(f"perf: {endpoint} over {protocol}, concurrency {row['concurrency']}, our load generator...",
                  file=sys.stderr, flush=True)
            row["ours"] = ours(endpoint, protocol, settings, row["concurrency"], 3 * args.interval_ms / 1000)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.bench.perf", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--endpoint", action="append", choices=list(ENDPOINTS),
                        help="an endpoint to measure (repeat for several; default: every public endpoint)")
    parser.add_argument("--protocol", action="append", choices=PROTOCOLS, help="default: both")
    parser.add_argument("--concurrency", default="1:8:7", metavar="START:END:STEP",
                        help="perf_analyzer's --concurrency-range")
    parser.add_argument("--interval-ms", type=int, default=2000, help="each measurement window")
    parser.add_argument("--compare", action="store_true",
                        help="also measure each point with our bench's load generator (closed loop, same inputs, "
                        f"protocol and concurrency) and give the ratio; for {', '.join(COMPARABLE)}")
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure each endpoint and protocol this many times (with --compare, perf_analyzer and "
                        "ours alternate, so both see the same machine); each figure is the median over the repeats")
    parser.add_argument("--out", type=Path, default=Path("reports/perf"), help="where CSVs and PERF.md go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ServerSettings.from_env()
    if settings.admin_key_generated:
        print("error: perf_analyzer reads each model's config, which needs the server's admin key; fix: start the "
              "server and run this with the same TRITON_ADMIN_KEY in the environment", file=sys.stderr)
        return 2
    try:
        wait_until_ready(settings.http_url, 5)
    except ServerNotReady:
        print(f"error: no server answers at {settings.http_url}; fix: start one (`make serve`, with the same "
              "TRITON_ADMIN_KEY and ports), then run this again", file=sys.stderr)
        return 2
    try:
        binary = ensure_perf_analyzer()
    except tools.ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data").mkdir(exist_ok=True)
    results: dict[tuple[str, str], list[dict]] = {}
    started = time.monotonic()
    for endpoint in args.endpoint or list(ENDPOINTS):
        data = args.out / "data" / f"{endpoint}.json"
        data.write_text(json.dumps(input_data(endpoint)))
        for protocol in args.protocol or PROTOCOLS:
            repeats = []
            for repeat in range(args.repeats):
                rows = measure(binary, endpoint, protocol, settings=settings, args=args, data=data, repeat=repeat)
                if rows is None:
                    return 1
                repeats.append(rows)
            results[(endpoint, protocol)] = merge(repeats)
    given = " ".join(sys.argv[1:] if argv is None else argv)
    note = (f"perf_analyzer 2.51.0, `python -m tritonkit.bench.perf {given}`"
            f" against {settings.http_url} / {settings.grpc_url}; {machine()}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - started:.0f} s. Latency is "
            "perf_analyzer's client-side latency; each row is its last stable measurement window"
            + (f", the median of {args.repeats} repeats (perf_analyzer and ours alternating; in brackets the range of "
               "their ratio over the repeats)." if args.repeats > 1 else "."))
    (args.out / "PERF.md").write_text(markdown(results, note))
    print(markdown(results, note))
    print(f"wrote {args.out / 'PERF.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
