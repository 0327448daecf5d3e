"""``python -m tritonkit.deploy.replicas`` (`make serve-replicas REPLICAS=2`): replicas behind a real load balancer.

What a Kubernetes Service and Prometheus do for the pods of ``deploy/kubernetes``, on one machine::

    clients --HTTP  :8000--+                +-- replica 0: python -m tritonkit.server (front, watchdog, tritonserver)
            --gRPC  :8001--+--> HAProxy ----+-- replica 1: ...   each on its own loopback ports
                           stats :8404      +-- ...
    Prometheus :9090 scrapes every replica's metrics port and HAProxy, and evaluates the autoscaler's recording
    rule (deploy/kubernetes/monitoring/tritonkit-rules.yml) per replica.

HAProxy (Debian's 2.6) balances round robin over HTTP/1.1 and gRPC (HTTP/2 cleartext). It checks each replica's
honest readiness (``/v2/health/ready``: 503 while a model recovers or tritonserver restarts) every 0.2 s, marks a
replica down at once when connecting to it fails (a passive check), and sends a failed request (connection
refused or reset, no answer, 502/503/504) once more to another replica. A gRPC error travels in HTTP/2 trailers, which
no balancer retries: the client's own retry (tritonkit.client: 6 retries with backoff on UNAVAILABLE) covers the
fraction of a second before the check takes the replica out. A replica whose launcher exits (its watchdog gave up) is
started again, as Kubernetes restarts a pod.

Everything stays on loopback, and everything stops with this process (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tritonkit import paths, tools
from tritonkit.client.health import ServerNotReady
from tritonkit.cpus import usable_cpus
from tritonkit.server import logs
from tritonkit.server.errors import NoEngine, SettingsError
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ADMIN_HEADER, LOOPBACK, ServerSettings
from tritonkit.server.supervisor import container
from tritonkit.server.supervisor.base import READY_TIMEOUT_S, Owned, ServerProcess
from tritonkit.server.supervisor.process import TritonServer
from tritonkit.server.supervisor.spawn import spawn
from tritonkit.tools import ToolMissing

RULES = Path("deploy/kubernetes/monitoring/tritonkit-rules.yml")
SCRAPE_INTERVAL_S = 2  # the recording rule's rate() windows (1m) hold 30 samples at this interval
CHECK_INTERVAL_MS = 200  # how long a dead tritonserver can get requests before HAProxy takes it out
STOP_GRACE_S = 20
MAX_REPLICA_RESTARTS = 5  # launcher restarts per replica before giving up (a crash loop)
# Containers: a CPU limit per replica that leaves this much of the machine to the others. Without one, a replica
# starting beside a busy one got 0.01-0.3 of a CPU at equal weights (cgroups measured, README "Replicas here"), its
# Python stubs missed the backend's 1-second health window, and Triton 2.51 aborted while loading.
RESTART_HEADROOM_CPUS = 0.5


@dataclasses.dataclass(frozen=True)
class Layout:
    """The public ports (balancer, its stats, Prometheus) and each replica's own settings."""

    http_port: int
    grpc_port: int
    stats_port: int
    prometheus_port: int
    replicas: tuple[ServerSettings, ...]

    @classmethod
    def make(cls, count: int, admin_key: str, *, http_port: int = 8000, grpc_port: int = 8001,
             stats_port: int = 8404, prometheus_port: int = 9090, **settings) -> Layout:
        if count < 1:
            raise SettingsError(f"REPLICAS={count}: at least one replica is needed")
        public = (http_port, grpc_port, stats_port, prometheus_port)
        if len(set(public)) != 4:
            raise SettingsError(f"the HTTP, gRPC, stats and Prometheus ports must differ, got {public}")
        ports = iter(free_ports(3 * count))
        replicas = tuple(ServerSettings(admin_key=admin_key, http_port=next(ports), grpc_port=next(ports),
                                        metrics_port=next(ports), **settings) for _ in range(count))
        return cls(http_port, grpc_port, stats_port, prometheus_port, replicas)

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"

    @property
    def stats_url(self) -> str:
        return f"http://{LOOPBACK}:{self.stats_port}"

    def balancer_settings(self) -> ServerSettings:
        """Settings whose URLs are the balancer's (for clients and load generators)."""
        first = self.replicas[0]
        return dataclasses.replace(first, http_port=self.http_port, grpc_port=self.grpc_port,
                                   metrics_port=self.stats_port)


def replica_name(index: int) -> str:
    return f"replica-{index}"


def haproxy_config(layout: Layout) -> str:
    """HAProxy's configuration: round robin over every replica for HTTP and gRPC, health from honest readiness."""
    http_servers, grpc_servers = [], []
    for index, replica in enumerate(layout.replicas):
        name = replica_name(index)
        http_servers.append(f"    server {name} {LOOPBACK}:{replica.http_port} check "
                            "observe layer4 error-limit 1 on-error mark-down")
        grpc_servers.append(f"    server {name} {LOOPBACK}:{replica.grpc_port} proto h2 track replicas_http/{name}")
    return "\n".join([
        "# Generated by python -m tritonkit.deploy.replicas; edit the module, not this file.",
        "global",
        "    maxconn 2048",
        "    tune.bufsize 262144  # a request up to 256 KiB is held whole, so a failed one can be sent again",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 120s",
        "    timeout server 120s  # the longest inference under overload stays far below",
        "    timeout http-request 30s",
        "    option http-buffer-request",
        "    retries 1",
        "    option redispatch 1  # the retry goes to another replica",
        "    retry-on conn-failure empty-response response-timeout 502 503 504",
        "    timeout check 2s  # a slow answer under load is not a failed check",
        f"    default-server inter {CHECK_INTERVAL_MS}ms downinter 500ms fall 1 rise 2  # readiness is honest: "
        "one 503 takes a replica out",
        "",
        "frontend http",
        f"    bind {LOOPBACK}:{layout.http_port}",
        "    default_backend replicas_http",
        "",
        "frontend grpc",
        f"    bind {LOOPBACK}:{layout.grpc_port} proto h2",
        "    default_backend replicas_grpc",
        "",
        "backend replicas_http",
        "    balance roundrobin",
        "    option httpchk GET /v2/health/ready  # 503 while a model recovers or tritonserver restarts",
        "    http-check expect status 200",
        *http_servers,
        "",
        "backend replicas_grpc  # each server is up exactly when the same replica's HTTP server is",
        "    balance roundrobin",
        *grpc_servers,
        "",
        "frontend stats",
        f"    bind {LOOPBACK}:{layout.stats_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /",
        "    stats refresh 5s",
        "",
    ])


def prometheus_config(layout: Layout, rules: Path) -> str:
    """Prometheus' configuration: every replica's metrics (labelled ``pod`` as in Kubernetes) and HAProxy's."""
    scrape = [{"job_name": "tritonkit", "static_configs": [
        {"targets": [f"{LOOPBACK}:{replica.metrics_port}"], "labels": {"pod": replica_name(index)}}
        for index, replica in enumerate(layout.replicas)]},
        {"job_name": "haproxy", "static_configs": [{"targets": [f"{LOOPBACK}:{layout.stats_port}"]}]}]
    config = {"global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
              "rule_files": [str(rules.resolve())], "scrape_configs": scrape}
    return "# Generated by python -m tritonkit.deploy.replicas.\n" + json.dumps(config, indent=2) + "\n"  # JSON is YAML


class Replicas(Owned):
    """N launchers, HAProxy in front, Prometheus beside: started, watched and stopped together. A context manager."""

    def __init__(self, layout: Layout, run_dir: Path, *, containers: bool = False, engine: str = "auto",
                 container_cpus: float | None = None):
        for tool in ("haproxy", "prometheus"):
            tools.require(tool)  # ToolMissing names `make tools` and the apt-get line
        self.layout = layout
        self.run_dir = run_dir
        self.containers = containers  # each replica the image in a container (container.ContainerServer)
        self.engine = container.engine(engine) if containers else ""
        self.container_cpus = container_cpus or container_cpu_limit()  # each container's --cpus
        self.servers: list[ServerProcess] = []
        self.restarts = [0] * len(layout.replicas)
        self.haproxy: subprocess.Popen | None = None
        self.prometheus: subprocess.Popen | None = None

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def start(self) -> Replicas:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        haproxy_cfg = self.run_dir / "haproxy.cfg"
        haproxy_cfg.write_text(haproxy_config(self.layout))
        check = subprocess.run(["haproxy", "-c", "-q", "-f", str(haproxy_cfg)], capture_output=True, text=True,
                               check=False)
        if check.returncode:
            raise RuntimeError(f"haproxy refused {haproxy_cfg}:\n{check.stderr}{check.stdout}")
        prometheus_yml = self.run_dir / "prometheus.yml"
        prometheus_yml.write_text(prometheus_config(self.layout, paths.root() / RULES))
        if self.containers:
            self._build_image()
        self.servers = [self._launch(index) for index in range(len(self.layout.replicas))]
        self.haproxy = self._spawn("haproxy", ["haproxy", "-db", "-f", str(haproxy_cfg)])
        self.prometheus = self._spawn("prometheus", [
            "prometheus", f"--config.file={prometheus_yml}", f"--storage.tsdb.path={self.run_dir / 'prometheus'}",
            f"--web.listen-address={LOOPBACK}:{self.layout.prometheus_port}", "--storage.tsdb.retention.time=1d",
            "--web.enable-lifecycle"])
        return self

    def _build_image(self) -> None:
        argv = [sys.executable, "-m", "tritonkit.server", "--container", "--engine", self.engine, "--build-only"]
        with self.log_path("image").open("ab") as output:
            built = subprocess.run(argv, stdout=output, stderr=subprocess.STDOUT, cwd=paths.root(), timeout=1800,
                                   check=False)
        if built.returncode:
            raise RuntimeError(f"the image did not build; see {self.log_path('image')}")

    def _launch(self, index: int) -> ServerProcess:
        settings, log = self.layout.replicas[index], self.log_path(replica_name(index))
        if self.containers:
            name = f"tritonkit-{replica_name(index)}-{self.layout.http_port}"
            return container.ContainerServer(settings, name, log, self.engine, cpus=self.container_cpus).start()
        return TritonServer(settings, launcher=True, log_path=log).start()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        with self.log_path(name).open("ab") as output:
            return spawn(argv, output=output)

    def wait_until_ready(self, timeout_s: float = 2 * READY_TIMEOUT_S) -> float:
        """Waits for every replica, then for HAProxy to see them all up and Prometheus to answer."""
        started = time.monotonic()
        for server in self.servers:
            server.wait_until_ready(max(1.0, timeout_s - (time.monotonic() - started)))
        while time.monotonic() - started < timeout_s:
            self._check_helpers()
            if self.up() == [True] * len(self.servers) and _answers(f"{self.layout.prometheus_url}/-/ready"):
                return time.monotonic() - started
            time.sleep(0.2)
        raise ServerNotReady(f"HAProxy or Prometheus not ready after {timeout_s:g} s; see the logs in {self.run_dir}")

    def _check_helpers(self) -> None:
        for name, process in (("haproxy", self.haproxy), ("prometheus", self.prometheus)):
            if process is None or process.poll() is not None:
                tail = self.log_path(name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited; the tail of {self.log_path(name)}:\n{tail}")

    def up(self) -> list[bool]:
        """Per replica, whether HAProxy's HTTP backend has it UP now (from its stats, CSV)."""
        with urllib.request.urlopen(f"{self.layout.stats_url}/;csv", timeout=5) as answer:
            rows = answer.read().decode().splitlines()
        header = rows[0].lstrip("# ").split(",")
        states = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields.get("pxname") == "replicas_http":
                states[fields["svname"]] = fields["status"].startswith("UP")
        return [states.get(replica_name(index), False) for index in range(len(self.servers))]

    def wait(self) -> int:
        """Runs until interrupted: restarts a replica whose launcher exited, stops all when a helper dies."""
        while True:
            self._check_helpers()
            for index, server in enumerate(self.servers):
                if server.alive():
                    continue
                code = server.stop()
                if self.restarts[index] >= MAX_REPLICA_RESTARTS:
                    print(f"error: {replica_name(index)} exited ({code}) {self.restarts[index] + 1} times; "
                          f"giving up (see {self.log_path(replica_name(index))})", file=sys.stderr, flush=True)
                    return 1
                self.restarts[index] += 1
                print(f"{replica_name(index)}: the launcher exited ({code}); starting it again", file=sys.stderr,
                      flush=True)
                self.servers[index] = self._launch(index)
            time.sleep(0.5)

    def stop(self, timeout_s: float | None = None) -> int:
        """HAProxy stops taking connections and finishes what it holds; then every replica drains (``timeout_s``
        each, their own default when None); then Prometheus."""
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.send_signal(signal.SIGUSR1)  # soft stop
            _wait_or_kill(self.haproxy)
        codes = [server.stop(timeout_s) for server in self.servers]
        if self.prometheus is not None and self.prometheus.poll() is None:
            self.prometheus.terminate()
            _wait_or_kill(self.prometheus)
        return next((code for code in codes if code), 0)


    def banner(self) -> str:
        kind = f"containers, --cpus={self.container_cpus:g} each" if self.containers else "embedded launchers"
        lines = [f"\n{len(self.servers)} replicas ({kind}) ready behind HAProxy; Ctrl-C stops everything",
                 f"  HTTP        {self.layout.http_url}",
                 f"  gRPC        {self.layout.grpc_url}",
                 f"  HAProxy     {self.layout.stats_url}/ (stats; /metrics for Prometheus)",
                 f"  Prometheus  {self.layout.prometheus_url}  (rule: tritonkit_queue_ms_per_request)"]
        for index, replica in enumerate(self.layout.replicas):
            lines.append(f"  {replica_name(index)}   {replica.http_url}  gRPC {replica.grpc_url}  "
                         f"metrics {replica.metrics_url}  log {self.log_path(replica_name(index))}")
        lines.append(f"  admin APIs need header '{ADMIN_HEADER}' (the same key on every replica)\n")
        return "\n".join(lines)


def container_cpu_limit(cpus: int | None = None) -> float:
    """Each replica container's CPU limit: the CPUs this process may use (its own quota included), less
    ``RESTART_HEADROOM_CPUS`` (at least one CPU), so a replica that (re)starts beside busy ones always finds CPU
    to load its models."""
    available = cpus if cpus is not None else usable_cpus()
    return max(1.0, available - RESTART_HEADROOM_CPUS)


def _wait_or_kill(process: subprocess.Popen) -> None:
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def query(prometheus_url: str, expression: str, at: float | None = None) -> list[dict]:
    """An instant PromQL query over Prometheus' HTTP API; the ``result`` list (raises on an error status)."""
    parameters = {"query": expression}
    if at is not None:
        parameters["time"] = f"{at:.3f}"
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode(parameters)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as error:
        body = json.load(error)
    if body.get("status") != "success":
        raise ValueError(f"Prometheus refused {expression!r}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]["result"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.deploy.replicas",
        description="Serve N replicas of model_repository/ and ensembles/ behind HAProxy (HTTP and gRPC), with "
        "Prometheus scraping every replica and evaluating the autoscaler's recording rule. Loopback only.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS") or 2),
                        help="how many embedded servers [env REPLICAS]")
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("HTTP_PORT") or 8000),
                        help="the balancer's HTTP port [env HTTP_PORT]")
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("GRPC_PORT") or 8001),
                        help="the balancer's gRPC port [env GRPC_PORT]")
    parser.add_argument("--stats-port", type=int, default=int(os.environ.get("STATS_PORT") or 8404),
                        help="HAProxy's stats page and metrics [env STATS_PORT]")
    parser.add_argument("--prometheus-port", type=int, default=int(os.environ.get("PROMETHEUS_PORT") or 9090),
                        help="Prometheus' web UI and API [env PROMETHEUS_PORT]")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="generated configs, logs and Prometheus' data [default: .triton/replicas]")
    parser.add_argument("--containers", action="store_true", default=bool(os.environ.get("CONTAINERS")),
                        help="run each replica as the image in a container (make image; docker, else podman) "
                        "[env CONTAINERS=1]")
    parser.add_argument("--container-cpus", type=float, default=container_cpu_limit(),
                        help="with --containers: each container's CPU limit (`run --cpus`); the default is the CPUs "
                        f"this may use less {RESTART_HEADROOM_CPUS:g}, so a restarting replica finds CPU to load")
    parser.add_argument("--dry-run", action="store_true", help="print the HAProxy and Prometheus configs and stop")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(logs.current_format())  # the supervisor's and watchdog's lines of an in-process server
    key = os.environ.get("TRITON_ADMIN_KEY")
    try:
        layout = Layout.make(args.replicas, key or ServerSettings.from_env().admin_key, http_port=args.http_port,
                             grpc_port=args.grpc_port, stats_port=args.stats_port,
                             prometheus_port=args.prometheus_port)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(haproxy_config(layout))
        print(prometheus_config(layout, paths.root() / RULES))
        return 0
    try:
        replicas = Replicas(layout, args.run_dir or paths.root() / ".triton" / "replicas", containers=args.containers,
                            container_cpus=args.container_cpus)
    except (ToolMissing, NoEngine) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not key:
        print(f"TRITON_ADMIN_KEY was unset; generated one for this run: {layout.replicas[0].admin_key}")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"starting {args.replicas} replicas (every model loads in each; a minute or two on 2 cores); logs in "
          f"{replicas.run_dir}", flush=True)
    try:
        replicas.start()
        replicas.wait_until_ready()
        print(replicas.banner(), flush=True)
        return replicas.wait()
    except (ServerNotReady, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return replicas.stop() or 1
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the drain short
            signal.signal(signum, signal.SIG_IGN)
        print("stopping: HAProxy first, then every replica drains its in-flight requests...", file=sys.stderr,
              flush=True)
        return replicas.stop()


def _raise_interrupt(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
