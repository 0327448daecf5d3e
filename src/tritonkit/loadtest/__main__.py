"""``python -m tritonkit.loadtest`` (``make loadtest``): a bounded, headless locust run with the server's own view.

Writes into the results folder: locust's CSV files and HTML report, ``endpoints.json`` (client side per
endpoint), ``server.json`` (per-model change of Triton's counters) and ``summary.md`` that puts both side
by side. Exits non-zero when an SLO (loadtest/slo.json) is breached, and says which.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tritonkit import paths
from tritonkit.client import Client, metrics
from tritonkit.client.health import is_ready
from tritonkit.loadtest import slo
from tritonkit.server import logs
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.process import TritonServer

HERE = Path(__file__).resolve().parent  # locustfile.py and locust.conf ship in the package
USER_CLASSES = ("MixedUser", "SentimentUser", "LstmUser", "EmbeddingUser", "DigitUser", "DiabetesUser", "CancerUser",
                "RecommenderUser")
ROLLOUT_MODEL = "lstm_sentiment_classifier"
SERVER_READY_TIMEOUT_S = 180  # every model on 2 shared cores, with room for a busy machine
ROLLOUT_MODELS = {"model_repository": [ROLLOUT_MODEL],
                  "ensembles": ["lstm_tokenizer", "lstm_sentiment"]}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.loadtest", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's HTTP address")
    parser.add_argument("--grpc-port", type=int, default=8001, help="the server's gRPC port")
    parser.add_argument("--metrics-port", type=int, default=8002, help="the server's metrics port")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--user", choices=USER_CLASSES, default="MixedUser",
                        help="user class (one per endpoint or mixed)")
    parser.add_argument("--users", type=int, default=8, help="concurrent users")
    parser.add_argument("--spawn-rate", type=float, default=4.0, help="users started per second")
    parser.add_argument("--run-time", type=int, default=60, help="seconds; the run always stops by then")
    parser.add_argument("--shape", choices=("steady", "step", "spike"), default="steady", help="load shape")
    parser.add_argument("--slo", type=Path, default=slo.DEFAULT_FILE, help="SLO file (JSON)")
    parser.add_argument("--results", type=Path, help="results folder (default reports/loadtest/<time>)")
    parser.add_argument("--scenario", choices=("load", "rollout"), default="load",
                        help="rollout: serve a copy of the LSTM pipeline, load version 2 and retire 1 under load")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    args.results = args.results or paths.reports() / "loadtest" / time.strftime("%Y%m%d-%H%M%S")
    args.results.mkdir(parents=True, exist_ok=True)
    if args.scenario == "rollout":
        return rollout(args)
    server = None
    if not is_ready(args.url):
        print(f"no server answers at {args.url}: starting the embedded one", flush=True)
        server = start_server(args, list(paths.repositories()))
    try:
        return run_and_report(args)
    finally:
        if server is not None:
            server.stop()


def start_server(args, repositories, *, model_control: str = "none", admin_key: str | None = None) -> TritonServer:
    """The embedded server on the ports in ``args``, its log in the results folder; returns once ready and
    supervised."""
    settings = ServerSettings.from_env(
        http_port=int(args.url.rsplit(":", 1)[1]), grpc_port=args.grpc_port, metrics_port=args.metrics_port,
        repositories=tuple(repositories), model_control=model_control,
        **({"admin_key": admin_key, "admin_key_generated": False} if admin_key else {}),
    )
    server = TritonServer(settings, log_path=args.results / "server.log").start()
    try:
        server.wait_until_ready(SERVER_READY_TIMEOUT_S)
        server.supervise()
    except BaseException:
        server.stop()
        raise
    return server


def run_and_report(args) -> int:
    metrics_url = f"{args.url.rsplit(':', 1)[0]}:{args.metrics_port}/metrics"
    before = metrics.scrape(metrics_url)
    code = run_locust(args)
    server_side = metrics.delta(before, metrics.scrape(metrics_url))
    (args.results / "server.json").write_text(json.dumps(server_side, indent=2))
    client_side = json.loads((args.results / "endpoints.json").read_text())
    (args.results / "summary.md").write_text(summary(args, client_side, server_side))
    print((args.results / "summary.md").read_text())
    print(f"results: {args.results}")
    return code


def run_locust(args) -> int:
    command = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--config", str(HERE / "locust.conf"),
        "--headless", "--host", args.url, "-u", str(args.users), "-r", str(args.spawn_rate),
        "--run-time", f"{args.run_time}s", "--csv", str(args.results / "locust"),
        "--html", str(args.results / "report.html"), "--triton-protocol", args.protocol,
        "--grpc-port", str(args.grpc_port), "--load-shape", args.shape, "--slo-file", str(args.slo),
        "--report-json", str(args.results / "endpoints.json"), args.user,
    ]
    print(f"locust: {args.user} x{args.users} over {args.protocol} for {args.run_time} s ({args.shape})", flush=True)
    done = subprocess.run(command, cwd=paths.root(), timeout=args.run_time + 120, check=False)
    return done.returncode


def summary(args, client_side: dict, server_side: dict) -> str:
    lines = [
        f"# Load test: {args.user}, {args.users} users, {args.protocol}, {args.run_time} s, {args.shape}",
        "",
        "Client: locust's view of each endpoint. Server: the change in Triton's own counters over the run",
        "(queue = waiting for a batch or an instance; compute = input + inference + output, per request).",
        "",
        "| endpoint | requests | failures | rps | p50 ms | p95 ms | p99 ms "
        "| server queue ms | server compute ms | avg batch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in sorted(client_side["endpoints"].items()):
        server = server_side.get(name, {})
        lines.append(
            f"| `{name}` | {result['num_requests']} | {result['num_failures']} | {result['rps']:.1f} "
            f"| {result['p50_ms']:.0f} | {result['p95_ms']:.0f} | {result['p99_ms']:.0f} "
            f"| {server.get('avg_queue_ms', 0):.1f} | {server.get('avg_compute_ms', 0):.1f} "
            f"| {server.get('avg_batch', 0):.1f} |"
        )
    steps = sorted(set(server_side) - set(client_side["endpoints"]))
    if steps:
        lines += ["", "Composing models (the steps inside the endpoints):", "",
                  "| model | requests | queue ms | compute ms | avg batch |", "|---|---|---|---|---|"]
        for name in steps:
            s = server_side[name]
            lines.append(f"| `{name}` | {s.get('success', 0):.0f} | {s['avg_queue_ms']:.1f} "
                         f"| {s['avg_compute_ms']:.1f} | {s['avg_batch']:.1f} |")
    cpu = client_side["generator_cpu_percent"]
    lines += ["", f"Load generator CPU: mean {cpu['mean']:.0f}%, peak {cpu['peak']:.0f}% of one core"
              + (" (above 90%: it may be the bottleneck)" if cpu["peak"] > 90 else "") + ".", ""]
    breaches = client_side["slo_breaches"]
    lines.append("SLOs: " + ("all met." if not breaches else "BREACHED: " + "; ".join(breaches)))
    return "\n".join(lines) + "\n"


def rollout(args) -> int:
    """Load version 2 of the LSTM classifier and retire version 1 while users call lstm_sentiment.

    Serves a copy of the LSTM pipeline (so the real repository is never touched) with MODEL_CONTROL=explicit;
    a third of the way in, version 2 appears and is loaded through the repository API; the config's
    version policy (latest 1) then retires version 1 once its in-flight requests are done.
    """
    work = Path(tempfile.mkdtemp(prefix="rollout-"))
    repositories = []
    for repository, names in ROLLOUT_MODELS.items():
        for name in names:
            shutil.copytree(paths.root() / repository / name, work / repository / name)
        repositories.append(work / repository)
    http_port, args.grpc_port, args.metrics_port = free_ports(3)
    args.url, args.user = f"http://127.0.0.1:{http_port}", "LstmUser"
    key = secrets.token_urlsafe(24)
    server = start_server(args, repositories, model_control="explicit", admin_key=key)
    events: dict = {}
    swap = threading.Timer(args.run_time / 3, swap_version, (args.url, work / "model_repository", key, events))
    swap.start()
    try:
        code = run_and_report(args)
        swap.join()
    finally:
        swap.cancel()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    endpoint = json.loads((args.results / "endpoints.json").read_text())["endpoints"].get("lstm_sentiment", {})
    report = {"requests": endpoint.get("num_requests", 0), "failed_requests": endpoint.get("num_failures", -1),
              **events}
    (args.results / "rollout.json").write_text(json.dumps(report, indent=2))
    print(f"rollout under load: {report['failed_requests']} failed of {report['requests']} requests; "
          f"versions {report.get('versions_before')} -> {report.get('versions_after')} "
          f"(load took {report.get('load_s', float('nan')):.1f} s)")
    ok = report["failed_requests"] == 0 and report.get("versions_after") == ["2"]
    return code if ok else 1


def swap_version(url: str, repository: Path, admin_key: str, events: dict) -> None:
    """Adds version 2 (the same weights: the point is the switch) and loads it with the admin key."""
    with Client(url, admin_key=admin_key, retries=0) as admin:
        events["versions_before"] = admin.metadata(ROLLOUT_MODEL)["versions"]
        shutil.copytree(repository / ROLLOUT_MODEL / "1", repository / ROLLOUT_MODEL / "2")
        start = time.perf_counter()
        admin.load(ROLLOUT_MODEL)
        events["load_s"] = time.perf_counter() - start
        events["versions_after"] = admin.metadata(ROLLOUT_MODEL)["versions"]


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
