"""``python -m tritonkit.bench`` (``make bench``): the side-by-side benchmark, in one run, on the same inputs.

Systems, all on the same CPU(s), idle while another is measured:
  baseline      Flask + PyTorch, threaded, one request at a time (bench/baseline.py)
  triton-*      our deployment: ``text_sentiment`` (INT8, minilm_sentiment v2) / ``digit_classifier`` ensembles
                on the embedded Triton, over gRPC and HTTP (binary tensors); ``text_sentiment_fp32`` (v1);
                dynamic batching off is an extra Triton server made for the run from the shipped repositories
  ceiling       the same ONNX graphs in process with ONNX Runtime at their best batch size (bench/ceiling.py)

Method: closed loop at each concurrency; warm-up before each system; up to --requests requests or
--max-seconds per point; --repeats passes over every point, interleaved, reported as the median and the
spread. The systems under test run pinned (taskset) to --server-cpus, this process to --client-cpus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tritonkit import paths
from tritonkit.bench import cpu, inputs, loadgen, report
from tritonkit.client import metrics
from tritonkit.export.pipeline import pytorch_weights_path
from tritonkit.export.repository.record import RECORD_NAME
from tritonkit.server import logs
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.base import ServerProcess
from tritonkit.server.supervisor.process import TritonServer

ADMIN_KEY = "bench-admin-key-not-secret"
SERVER_READY_TIMEOUT_S = 300  # two servers and two baselines load at once on the server CPUs
TEXT_OUTPUTS = ("LABEL", "PROBABILITIES")
TEXT_MODELS = ("minilm_tokenizer", "minilm_sentiment", "text_sentiment")


def parse_args(argv=None) -> argparse.Namespace:
    cpus = sorted(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(prog="python -m tritonkit.bench", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,2,4,8,16", help="closed-loop concurrencies, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000, help="requests per point (a p99 needs 1000)")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="time limit per point")
    parser.add_argument("--warmup-seconds", type=float, default=2.0, help="warm-up per system and workload, per repeat")
    parser.add_argument("--ceiling-seconds", type=float, default=1.5, help="timed seconds per ceiling batch size")
    parser.add_argument("--systems", default="", help="only these systems (comma-separated names, see results)")
    parser.add_argument("--client-cpus", default=str(cpus[0]), help="CPUs of the load generator (taskset list)")
    parser.add_argument("--server-cpus", default=",".join(map(str, cpus[1:] or cpus)),
                        help="CPUs of every system under test and of the ceiling")
    parser.add_argument("--out", type=Path,
                        help="where results.json, README.md and the plot go (default: bench/results/ of the project)")
    parser.add_argument("--note", default="", help="a line for the report (what this run changed)")
    return parser.parse_args(argv)


class Fleet:
    """The systems under test, each pinned to the server CPUs, stopped together.

    Triton servers are ``TritonServer`` owners (the launcher, so /proc shows the guard under it for the CPU
    shares); the Flask baselines are plain processes.
    """

    def __init__(self, server_cpus: str, logs: Path):
        self.server_cpus, self.logs = server_cpus, logs
        self.processes: list[subprocess.Popen] = []
        self.servers: list[ServerProcess] = []

    def start(self, name: str, argv: list[str], env: dict | None = None) -> Path:
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(["taskset", "-c", self.server_cpus, *argv], cwd=paths.root(),
                                   stdout=log.open("w"), stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
        self.processes.append(process)
        return log

    def start_triton(self, name: str, repositories: list[Path]) -> dict:
        http, grpc, metrics_port = free_ports(3)
        settings = ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics_port,
                                  repositories=tuple(repositories))
        cpus = {int(cpu) for cpu in self.server_cpus.split(",")}
        server = TritonServer(settings, launcher=True, log_path=self.logs / f"{name}.log", cpus=cpus).start()
        self.servers.append(server)
        return {"http": f"127.0.0.1:{http}", "grpc": f"127.0.0.1:{grpc}", "log": server.log_path, "pid": server.pid,
                "metrics": settings.metrics_url, "owner": server}

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes) and all(s.alive() for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def unbatched_repositories(root: Path) -> list[Path]:
    """The text pipeline with ``dynamic_batching`` removed from every config (version folders linked)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    repositories = []
    for source in paths.repositories():
        target = root / source.name
        for model in TEXT_MODELS:
            if not (source / model).is_dir():
                continue
            (target / model).mkdir(parents=True)
            for child in (source / model).iterdir():
                if child.is_dir():
                    (target / model / child.name).symlink_to(child.resolve())
                elif child.name != "config.pbtxt":
                    shutil.copy2(child, target / model / child.name)
            config = text_format.Parse((source / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
            config.ClearField("dynamic_batching")
            (target / model / "config.pbtxt").write_text(text_format.MessageToString(config))
        repositories.append(target)
    return repositories


def direct_address(log: Path, service: str) -> str:
    """tritonserver's own address of ``service`` (``HTTPService``, ``GRPCInferenceService``) behind the front,
    from its log."""
    match = re.search(rf"Started {service} at (\S+?)\"?$", log.read_text(), re.MULTILINE)
    if not match:
        raise SystemExit(f"error: no 'Started {service}' line in {log}")
    return match.group(1)


def plan(servers: dict, baselines: dict) -> list[dict]:
    """Every (system, workload) pair with its target factory."""
    main, unbatched = servers["main"], servers["unbatched"]
    texts = {name: [text.encode() for text in make()] for name, make in inputs.TEXT_SETS.items()}
    raw_texts = {name: list(make()) for name, make in inputs.TEXT_SETS.items()}
    pngs = list(inputs.digit_pngs())
    rows = []

    def triton(system, protocol, url, model, workload, *, server, input_name="TEXT", payloads=None):
        rows.append({"system": system, "workload": workload, "server": server, "make": lambda: loadgen.TritonTarget(
            system, protocol, url, model, input_name=input_name, payloads=payloads or texts[workload],
            outputs=TEXT_OUTPUTS)})

    for workload in inputs.TEXT_SETS:
        rows.append({"system": "baseline Flask+PyTorch", "workload": workload, "server": None,
                     "make": lambda workload=workload: loadgen.FlaskTarget(
                         "baseline", baselines["sentiment"], raw_texts[workload], "text")})
        triton("Triton gRPC", "grpc", main["grpc"], "text_sentiment", workload, server=main)
        triton("Triton HTTP", "http", main["http"], "text_sentiment", workload, server=main)
        triton(report.FP32, "grpc", main["grpc"], "text_sentiment_fp32", workload, server=main)
        triton("Triton gRPC unbatched", "grpc", unbatched["grpc"], "text_sentiment", workload, server=unbatched)
    triton("Triton HTTP no guard", "http", main["http_direct"], "text_sentiment", "short", server=main)
    triton("Triton gRPC no front", "grpc", main["grpc_direct"], "text_sentiment", "short", server=main)
    rows.append({"system": "baseline Flask+PyTorch", "workload": "digits", "server": None,
                 "make": lambda: loadgen.FlaskTarget("baseline", baselines["digits"], pngs, None)})
    triton("Triton gRPC", "grpc", main["grpc"], "digit_classifier", "digits", server=main,
           input_name="IMAGE", payloads=pngs)
    triton("Triton HTTP", "http", main["http"], "digit_classifier", "digits", server=main,
           input_name="IMAGE", payloads=pngs)
    triton("Triton gRPC no front", "grpc", main["grpc_direct"], "digit_classifier", "digits", server=main,
           input_name="IMAGE", payloads=pngs)
    return rows


async def measure(args, rows: list[dict], ceilings: list[dict]) -> list[dict]:
    """Every point, repeat by repeat; each repeat starts with a ceiling pass (noise hits all systems alike)."""
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    points = []
    total = args.repeats * len(rows) * len(concurrencies)
    done, started = 0, time.perf_counter()
    for repeat in range(1, args.repeats + 1):
        ceilings += [{**entry, "repeat": repeat} for entry in ceiling(args)]
        for row in rows:
            target = row["make"]()
            await target.open()
            try:
                await loadgen.closed_loop(target, max(concurrencies), 10**9, args.warmup_seconds)
                for concurrency in concurrencies:
                    before = metrics.scrape(row["server"]["metrics"]) if row["server"] else None
                    ticks = cpu.snapshot(row["server"]["pid"]) if row["server"] else None
                    sample = await loadgen.closed_loop(target, concurrency, args.requests, args.max_seconds,
                                                       start_index=repeat * 7919 + concurrency)
                    server_side = metrics.delta(before, metrics.scrape(row["server"]["metrics"])) if before else None
                    entry = point(row, repeat, concurrency, sample, server_side)
                    if ticks is not None:
                        entry["cpu"] = cpu.shares(ticks, cpu.snapshot(row["server"]["pid"]), sample.seconds)
                    points.append(entry)
                    done += 1
                    print(f"[{done}/{total} {time.perf_counter() - started:.0f}s] repeat {repeat} {row['system']:<26}"
                          f" {row['workload']:<6} c={concurrency:<2} {sample.throughput:7.1f} req/s"
                          f" p95 {sample.percentile(95) or 0:7.1f} ms  n={len(sample.latencies)}"
                          f"{f'  errors={sample.errors}: {sample.first_error}' if sample.errors else ''}", flush=True)
            finally:
                await target.close()
    return points


def point(row: dict, repeat: int, concurrency: int, sample: loadgen.Sample, server_side: dict | None) -> dict:
    return {
        "system": row["system"], "workload": row["workload"], "repeat": repeat, "concurrency": concurrency,
        "requests": len(sample.latencies), "errors": sample.errors, "first_error": sample.first_error,
        "seconds": round(sample.seconds, 3), "throughput": round(sample.throughput, 2),
        "p50_ms": _round(sample.percentile(50)), "p95_ms": _round(sample.percentile(95)),
        "p99_ms": _round(sample.percentile(99)),
        "latencies_ms": [round(value * 1000, 2) for value in sample.latencies],
        "server": server_side,
    }


def _round(value):
    return None if value is None else round(value, 2)


async def agreement(servers: dict, baselines: dict) -> dict:
    """Labels and probabilities of the baseline (FP32 PyTorch) against Triton on the same inputs: the same model
    is served (``text_sentiment_fp32``), and how far the default's INT8 version moves its answers."""
    checks = {}
    samples = {"short": list(inputs.short_texts()[:48]), "long": list(inputs.long_texts()[:16])}
    import aiohttp
    import numpy as np
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(servers["main"]["grpc"])
    async with aiohttp.ClientSession() as session:
        cases = [(f"{name}{label}", text, baselines["sentiment"], model) for name, texts in samples.items()
                 for model, label in (("text_sentiment_fp32", ""), ("text_sentiment", " INT8")) for text in texts]
        cases += [("digits", png, baselines["digits"], "digit_classifier") for png in inputs.digit_pngs()[:48]]
        for workload, payload, url, model in cases:
            if workload == "digits":
                async with session.post(url, data=payload) as response:
                    expected = await response.json()
            else:
                async with session.post(url, json={"text": payload}) as response:
                    expected = await response.json()
            tensor = grpcclient.InferInput("IMAGE" if workload == "digits" else "TEXT", [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[payload if workload == "digits" else payload.encode()]],
                                                dtype=np.object_))
            result = await client.infer(model, [tensor])
            label = result.as_numpy("LABEL")[0][0].decode()
            difference = float(np.max(np.abs(result.as_numpy("PROBABILITIES")[0]
                                             - np.array(expected["probabilities"]))))
            entry = checks.setdefault(workload, {"inputs": 0, "same_label": 0, "max_probability_difference": 0.0})
            entry["inputs"] += 1
            entry["same_label"] += label == expected["label"]
            entry["max_probability_difference"] = round(max(entry["max_probability_difference"], difference), 6)
    await client.close()
    return checks


def ceiling(args) -> list[dict]:
    print("ceiling: ONNX Runtime in process, every batch size...", flush=True)
    done = subprocess.run(["taskset", "-c", args.server_cpus, sys.executable, "-m", "tritonkit.bench.ceiling",
                           "--seconds", str(args.ceiling_seconds)], cwd=paths.root(), capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"error: bench.ceiling failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def accuracy() -> dict:
    """Held-out accuracy of each minilm_sentiment version, as `make export` measured it."""
    values = {}
    for version in (1, 2):
        record = json.loads((paths.model_repository() / "minilm_sentiment" / str(version) / RECORD_NAME).read_text())
        values[version] = record["metric"]
    return values


def int8_cosine() -> float:
    """The INT8 encoder's min cosine to FP32 sentence-transformers on the held-out texts, as `make export` measured."""
    record = json.loads((paths.model_repository() / "minilm_encoder" / "2" / RECORD_NAME).read_text())
    return record["metric"]


def check_exported() -> None:
    missing = [str(path) for path in (pytorch_weights_path(paths.model_repository(), "minilm_sentiment"),
                                       pytorch_weights_path(paths.model_repository(), "digit_resnet"),
                                       paths.model_repository() / "minilm_sentiment" / "2" / RECORD_NAME)
               if not path.is_file()]
    if missing:
        raise SystemExit(f"error: not exported yet: {', '.join(missing)}\nfix: run `make export`")


def wait_baseline(url: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=5)
        except urllib.error.HTTPError:
            return  # it answers (400 for the empty request): ready
        except OSError:
            time.sleep(0.5)
            continue
        return
    raise SystemExit(f"error: the baseline at {url} never answered; see {log}")


def main(argv=None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    args.out = args.out or paths.bench_results()
    check_exported()
    os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    shared = set(args.client_cpus.split(",")) & set(args.server_cpus.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tritonkit-bench-"))
    fleet = Fleet(args.server_cpus, work)
    started = time.time()
    try:
        servers = {
            "main": fleet.start_triton("triton", paths.repositories()),
            "unbatched": fleet.start_triton("triton-unbatched", unbatched_repositories(work / "unbatched")),
        }
        baselines = {}
        for model in ("sentiment", "digits"):
            port = free_ports(1)[0]
            log = fleet.start(f"baseline-{model}", [sys.executable, "-m", "tritonkit.bench.baseline", "--model", model,
                                                    "--port", str(port)])
            baselines[model] = f"http://127.0.0.1:{port}/predict"
            baselines[f"{model}_log"] = log
        for server in servers.values():
            server["owner"].wait_until_ready(SERVER_READY_TIMEOUT_S)
        servers["main"]["http_direct"] = direct_address(servers["main"]["log"], "HTTPService")
        servers["main"]["grpc_direct"] = direct_address(servers["main"]["log"], "GRPCInferenceService")
        for model in ("sentiment", "digits"):
            wait_baseline(baselines[model], baselines[f"{model}_log"])
        print(f"systems up in {time.time() - started:.0f} s; logs in {work}", flush=True)
        checks = asyncio.run(agreement(servers, baselines))
        print(f"baseline vs Triton on the same inputs: {json.dumps(checks)}", flush=True)
        rows = plan(servers, baselines)
        ceilings: list[dict] = []
        if args.systems:
            wanted = {name.strip() for name in args.systems.split(",")}
            rows = [row for row in rows if row["system"] in wanted]
        points = asyncio.run(measure(args, rows, ceilings))
    finally:
        fleet.stop()
    results = {
        "command": "python -m tritonkit.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "note": args.note,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "duration_s": round(time.time() - started),
        "machine": report.machine(),
        "client_cpus": args.client_cpus, "server_cpus": args.server_cpus, "shared_cpus": sorted(shared),
        "settings": {"requests": args.requests, "max_seconds": args.max_seconds, "repeats": args.repeats,
                     "warmup_seconds": args.warmup_seconds},
        "agreement": checks, "accuracy": accuracy(), "int8_min_cosine": int8_cosine(), "ceiling": ceilings,
        "points": points,
    }
    results["summary"] = report.summarize(points)
    (args.out / "README.md").write_text(report.markdown(results))
    report.plot(results, args.out / "throughput_vs_p95.png")
    for entry in points:  # the report pooled them; the committed JSON keeps the summaries
        entry.pop("latencies_ms")
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"report: {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
