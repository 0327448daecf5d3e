"""``python -m tritonkit.deploy.drill``: what the replicas behind HAProxy do under load, measured.

Three drills against a running ``Replicas`` (deploy/replicas.py), used by ``tests/integration/test_replicas.py``
and, with ``--out``, written to ``bench/results/REPLICAS.md``:

  split       mixed load (every public endpoint, half HTTP, half gRPC) and each replica's share of the
              answers, from each replica's own Triton counters;
  rule        the autoscaler's recording rule (``tritonkit_queue_ms_per_request``), queried from Prometheus'
              HTTP API per replica under load and then until it is back at 0 at idle;
  failover    ``SIGKILL`` of replica 0's tritonserver under load: the client errors left after HAProxy's retry and
              the client's own, when HAProxy took the replica out, when it rejoined, who served meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tritonkit import catalog, paths
from tritonkit.deploy.replicas import Layout, Replicas, ToolMissing, query, replica_name
from tritonkit.loadtest import soak
from tritonkit.server import logs
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor.procfs import tritonserver_of

RULE = "tritonkit_queue_ms_per_request"
PUBLIC_ENDPOINTS = (*catalog.SENTIMENT_ENDPOINTS, *catalog.EMBEDDING_ENDPOINTS, "digit_classifier",
                    "diabetes_regressor", "cancer_classifier", catalog.RECOMMENDER_ENDPOINT)
_STUB_FAULT = re.compile(r"traps: triton_python_b")
_SUCCESS = re.compile(r'^nv_inference_request_success\{model="([^"]+)",version="[^"]+"\} (\S+)$', re.MULTILINE)


def answered(replicas: Replicas) -> list[int]:
    """Per replica, the successful requests to the public endpoints so far (its own Triton counters)."""
    totals = []
    for settings in replicas.layout.replicas:
        try:
            with urllib.request.urlopen(settings.metrics_url, timeout=10) as answer:
                text = answer.read().decode()
        except OSError:  # a replica whose tritonserver restarts answers without Triton's counters
            totals.append(0)
            continue
        totals.append(sum(int(float(count)) for model, count in _SUCCESS.findall(text) if model in PUBLIC_ENDPOINTS))
    return totals


@contextmanager
def traffic(replicas: Replicas, concurrency: int, failures: list[dict] | None = None) -> Iterator[dict[str, int]]:
    """Mixed load through the balancer while the block runs; yields the counts (answers and errors per type).
    ``failures`` gets each error (see ``soak.load``)."""
    counts: dict[str, int] = {}
    stop = threading.Event()
    settings = replicas.layout.balancer_settings()
    thread = threading.Thread(target=lambda: asyncio.run(soak.load(settings, lambda: not stop.is_set(),
                                                                   concurrency, counts, failures)), daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(120)


def errors(counts: dict[str, int]) -> dict[str, int]:
    return {name: count for name, count in counts.items() if name.startswith("error")}


def stub_faults() -> int | None:
    """How many Python backend stub faults the kernel has logged (``traps: triton_python_b ...``); None where the
    kernel log cannot be read (not root). A stub that faults while its tritonserver starts takes the server down."""
    done = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30, check=False)
    return None if done.returncode else len(_STUB_FAULT.findall(done.stdout))


def split(replicas: Replicas, *, seconds: float = 10, concurrency: int = 4) -> dict:
    """Each replica's share of the answers to mixed load through the balancer."""
    before = answered(replicas)
    with traffic(replicas, concurrency) as counts:
        time.sleep(seconds)
    after = answered(replicas)
    served = [end - start for start, end in zip(before, after, strict=True)]
    total = sum(served) or 1
    return {"seconds": seconds, "concurrency": concurrency, "served": served,
            "shares": [round(count / total, 3) for count in served], "errors": errors(counts)}


def rule_values(replicas: Replicas) -> dict[str, float]:
    """The recording rule now, per replica (``pod`` label)."""
    return {row["metric"]["pod"]: float(row["value"][1]) for row in query(replicas.layout.prometheus_url, RULE)}


def recording_rule(replicas: Replicas, *, load_s: float = 30, concurrency: int = 8, idle_bound_s: float = 150) -> dict:
    """The rule per replica at the start, at the end of ``load_s`` of load, and back at 0 (or at the bound)."""
    at_start = rule_values(replicas)
    with traffic(replicas, concurrency) as counts:
        time.sleep(load_s)
        under_load = rule_values(replicas)
    stopped = time.monotonic()
    idle = rule_values(replicas)
    while any(value > 0 for value in idle.values()) and time.monotonic() - stopped < idle_bound_s:
        time.sleep(2)
        idle = rule_values(replicas)
    return {"load_s": load_s, "concurrency": concurrency, "at_start": at_start, "under_load": under_load,
            "idle": idle, "idle_after_s": round(time.monotonic() - stopped, 1), "errors": errors(counts)}


def failover(replicas: Replicas, *, concurrency: int = 4, warmup_s: float = 5, after_rejoin_s: float = 8,
             bound_s: float = 240) -> dict:
    """``SIGKILL`` of replica 0's tritonserver under load, and what the clients and the balancer saw."""
    launcher = replicas.servers[0]
    failures: list[dict] = []
    with traffic(replicas, concurrency, failures) as counts:
        time.sleep(warmup_s)
        victim = tritonserver_of(launcher.pid)
        if victim is None:
            raise RuntimeError(f"no tritonserver under {replica_name(0)}'s launcher (pid {launcher.pid})")
        before, faults_before = answered(replicas), stub_faults()
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        out_after = rejoined_after = None
        while time.monotonic() - killed < bound_s:
            up = replicas.up()[0]
            if out_after is None and not up:
                out_after = time.monotonic() - killed
            if out_after is not None and up:
                rejoined_after = time.monotonic() - killed
                break
            time.sleep(0.1)
        at_rejoin = answered(replicas)
        time.sleep(after_rejoin_s)
        after = answered(replicas)
    restarted = tritonserver_of(launcher.pid)
    faults_after = stub_faults()
    return {
        "concurrency": concurrency,
        "answered": sum(count for name, count in counts.items() if not name.startswith("error")),
        "errors": errors(counts),
        "out_after_s": None if out_after is None else round(out_after, 2),
        "rejoined_after_s": None if rejoined_after is None else round(rejoined_after, 1),
        # the killed replica's counters start again at 0 with its new tritonserver: only the others count here
        "served_while_out": [None if index == 0 else end - start
                             for index, (start, end) in enumerate(zip(before, at_rejoin, strict=True))],
        "served_after_rejoin": [end - start for start, end in zip(at_rejoin, after, strict=True)],
        "restarted": restarted is not None and restarted != victim,
        "failures": [{**failure, "at": round(failure["at"] - killed, 2)} for failure in failures[:10]],
        "balancer_retries": balancer_retries(replicas),
        "stub_faults": None if faults_before is None or faults_after is None else faults_after - faults_before,
    }


def balancer_retries(replicas: Replicas) -> dict[str, int]:
    """HAProxy's own counts for the HTTP backend: requests it sent again (retries) and to another replica."""
    with urllib.request.urlopen(f"{replicas.layout.stats_url}/;csv", timeout=5) as answer:
        rows = answer.read().decode().splitlines()
    header = rows[0].lstrip("# ").split(",")
    for row in rows[1:]:
        fields = dict(zip(header, row.split(","), strict=False))
        if fields.get("pxname") == "replicas_http" and fields.get("svname") == "BACKEND":
            return {"retries": int(fields["wretr"] or 0), "redispatched": int(fields["wredis"] or 0)}
    return {}


def autoscaler_target() -> str:
    """The HorizontalPodAutoscaler's averageValue for the recording rule."""
    hpa = (paths.root() / "deploy" / "kubernetes" / "base" / "horizontalpodautoscaler.yaml").read_text()
    match = re.search(r'averageValue: "([^"]+)"', hpa)
    return match.group(1) if match else "?"


def markdown(report: dict) -> str:
    s, r, f = report["split"], report["rule"], report["failover"]
    pods = sorted(r["under_load"])
    lines = [
        f"# {report['replicas']} replicas behind HAProxy", "",
        f"Command: `{report['command']}`. Machine: {report['machine']}. {report['date']}. Every replica is a "
        "`python -m tritonkit.server` launcher (front, watchdog, tritonserver)"
        + (f", each in a container of the image (`--cpus={report['container_cpus']:g}`)"
           if report.get("container_cpus") else "")
        + " on the same 2 cores as HAProxy, Prometheus and the load generator.", "",
        f"## Split ({s['seconds']:g} s of mixed load, {s['concurrency']} clients, half HTTP and half gRPC)", "",
        "| replica | answers | share |", "|---|---|---|",
        *(f"| {replica_name(i)} | {count} | {share:.1%} |" for i, (count, share) in
          enumerate(zip(s["served"], s["shares"], strict=True))),
        "", f"Errors: {s['errors'] or 'none'}.", "",
        f"## Recording rule `{RULE}` (Prometheus HTTP API, {r['load_s']:g} s of load, {r['concurrency']} clients)",
        "", "| replica | before | under load | idle |", "|---|---|---|---|",
        *(f"| {pod} | {r['at_start'].get(pod, 0):.2f} ms | {r['under_load'][pod]:.2f} ms | "
          f"{r['idle'].get(pod, 0):.2f} ms |" for pod in pods),
        "", f"Back at idle {r['idle_after_s']:g} s after the load stopped (the rule's rate() window is 1 minute). "
        f"The autoscaler's target (deploy/kubernetes/base/horizontalpodautoscaler.yaml) is {autoscaler_target()} ms "
        "on average per pod: under the values under load, above the idle ones.", "",
        f"## Failover (`SIGKILL` of {replica_name(0)}'s tritonserver under load, {f['concurrency']} clients)", "",
        f"- Client requests answered: {f['answered']}; failed after HAProxy's retry and the client's own: "
        f"{sum(f['errors'].values())} {f['errors'] or ''}".rstrip(),
        f"- HAProxy took {replica_name(0)} out {f['out_after_s']} s after the kill; its launcher restarted "
        f"tritonserver and it rejoined {f['rejoined_after_s']} s after the kill.",
        f"- Answers while it was out: "
        f"{', '.join(f'{replica_name(i)} {n}' for i, n in enumerate(f['served_while_out']) if n is not None)}; "
        f"in the {report['after_rejoin_s']:g} s after it rejoined: "
        f"{', '.join(f'{replica_name(i)} {n}' for i, n in enumerate(f['served_after_rejoin']))}.",
        f"- HAProxy's HTTP backend: {f['balancer_retries'].get('retries', 0)} requests retried, "
        f"{f['balancer_retries'].get('redispatched', 0)} of them on another replica.",
        f"- Python backend stub faults in the kernel log meanwhile: "
        f"{'not readable (not root)' if f.get('stub_faults') is None else f['stub_faults']}.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.deploy.drill",
        description="Start N replicas behind HAProxy with Prometheus (free loopback ports), then measure the "
        "split, the autoscaler's recording rule under load and at idle, and a failover (SIGKILL of one replica's "
        "tritonserver under load). About 5 minutes with 2 replicas.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--replicas", type=int, default=2, help="how many replicas")
    parser.add_argument("--containers", action="store_true", help="each replica the image in a container")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for REPLICAS.md and replicas.json (REPLICAS_CONTAINERS.md and "
                        "replicas_containers.json with --containers) [default: bench/results]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    out = args.out or paths.bench_results()
    http, grpc, stats, prometheus = free_ports(4)
    layout = Layout.make(args.replicas, ServerSettings.from_env().admin_key, http_port=http, grpc_port=grpc,
                         stats_port=stats, prometheus_port=prometheus)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        replicas = Replicas(layout, Path(tempfile.mkdtemp(prefix="tritonkit-replicas-")), containers=args.containers)
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"starting {args.replicas} replicas; logs in {replicas.run_dir}", file=sys.stderr, flush=True)
    with replicas:
        print("recording rule under load, then until idle...", file=sys.stderr, flush=True)
        result = {"rule": recording_rule(replicas)}
        print("split...", file=sys.stderr, flush=True)
        result["split"] = split(replicas)
        print("failover...", file=sys.stderr, flush=True)
        after_rejoin_s = 8
        result["failover"] = failover(replicas, after_rejoin_s=after_rejoin_s)
    report = {"command": "python -m tritonkit.deploy.drill " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": started, "machine": soak.machine(), "replicas": args.replicas,
              "container_cpus": replicas.container_cpus if args.containers else None,
              "after_rejoin_s": after_rejoin_s, **result}
    stem = "replicas_containers" if args.containers else "replicas"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem.upper()}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
