"""A replica container restarting beside a busy one: its CPU share, its sleepers' lateness, whether it comes back.

Reproduces the figures behind the containers' CPU limit (README "Replicas here", bench/results/CONTAINER.md):

    .venv/bin/python scripts/container_restart.py                 # no limit: the restart usually aborts
    .venv/bin/python scripts/container_restart.py --cpus 1.5      # what `make serve-replicas CONTAINERS=1` sets

Two containers of the image (`make image` first; podman): B serves the drill's mixed load (every public endpoint,
half HTTP, half gRPC), A idles. Each round kills A's tritonserver (SIGKILL from this machine) and, while A's launcher
restarts it, samples both containers' CPU use from their cgroups and runs a sleeper inside A that wakes every
300 ms, as the Python backend stub's health thread does (Triton gives it a 1-second window). It reports the worst
lateness of that sleeper, the stub faults the kernel logged (root only), and when A was ready again. A launcher gives
up after 3 restarts in 600 s, so keep ``--kills`` at 3 or below. About 2 minutes a round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tritonkit.client.health import ServerNotReady, wait_until_ready
from tritonkit.deploy.drill import stub_faults
from tritonkit.loadtest import soak
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor import container
from tritonkit.server.supervisor.procfs import child_running, tritonserver_of

ENGINE = "podman"
SLEEPER = """
import time, sys
end = time.monotonic() + float(sys.argv[1]); worst = 0.0
while time.monotonic() < end:
    start = time.monotonic(); time.sleep(0.3); worst = max(worst, time.monotonic() - start - 0.3)
print(f"{worst:.3f}")
"""
READY_BOUND_S = 180


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/container_restart.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cpus", type=float, default=None, help="both containers' CPU limit (`run --cpus`)")
    parser.add_argument("--kills", type=int, default=2, help="rounds (at most 3: the launcher's restart budget)")
    parser.add_argument("--sample-s", type=float, default=30, help="how long each round samples CPU and the sleeper")
    parser.add_argument("--concurrency", type=int, default=4, help="clients on B")
    return parser.parse_args(argv)


class Container:
    def __init__(self, tag: str, settings: ServerSettings, cpus: float | None, environment: dict[str, str]):
        self.name, self.settings, self.environment = f"restart-{tag}", settings, environment
        subprocess.run([ENGINE, "rm", "-f", self.name], env=environment, capture_output=True, check=False)
        command = container.run_command(settings, engine_name=ENGINE, name=self.name, cpus=cpus)
        self.log = Path(f"/tmp/{self.name}.log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def init_pid(self) -> int:
        inspect = subprocess.run([ENGINE, "inspect", "--format", "{{.State.Pid}}", self.name], env=self.environment,
                                 capture_output=True, text=True, check=True)
        return int(inspect.stdout.strip())

    def tritonserver(self) -> int:
        launcher = child_running(self.init_pid(), b"tritonkit.server")
        server = tritonserver_of(launcher) if launcher else None
        if server is None:
            raise RuntimeError(f"no tritonserver in {self.name}; see {self.log}")
        return server

    def cpu_seconds(self) -> float:
        """CPU time of the container's cgroup so far (cgroup v1 cpuacct or v2 cpu.stat)."""
        for line in Path(f"/proc/{self.init_pid()}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "cpuacct" in controllers.split(","):
                return int(Path(f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage").read_text()) / 1e9
            if controllers == "" and Path(f"/sys/fs/cgroup{path}/cpu.stat").is_file():
                stat = Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text()
                return int(re.search(r"usage_usec (\d+)", stat).group(1)) / 1e6
        raise RuntimeError(f"no CPU accounting found for {self.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
        subprocess.run([ENGINE, "rm", "-f", self.name], env=self.environment, capture_output=True, check=False)


def one_round(a: Container, b: Container, sample_s: float) -> dict:
    faults_before = stub_faults()
    start_a, start_b, started = a.cpu_seconds(), b.cpu_seconds(), time.monotonic()
    os.kill(a.tritonserver(), signal.SIGKILL)
    sleeper = subprocess.Popen([ENGINE, "exec", a.name, "python3", "-c", SLEEPER, str(sample_s)], env=a.environment,
                               stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # the launcher sees the exit and restarts tritonserver
    try:
        ready_s: float | str = round(wait_until_ready(a.settings.http_url, READY_BOUND_S,
                                                      alive=lambda: a.process.poll() is None) + 1, 1)
    except ServerNotReady as exc:
        ready_s = f"not ready ({exc})"[:90]
    worst = sleeper.communicate(timeout=sample_s + 60)[0].strip() or "?"
    elapsed = time.monotonic() - started
    faults_after = stub_faults()
    return {"ready_s": ready_s, "sleeper_worst_late_s": worst,
            "cpu_A": round((a.cpu_seconds() - start_a) / elapsed, 2) if a.process.poll() is None else "exited",
            "cpu_B": round((b.cpu_seconds() - start_b) / elapsed, 2),
            "stub_faults": None if faults_before is None else faults_after - faults_before}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    key = ServerSettings.from_env().admin_key
    environment = {**os.environ, **container.environment(ENGINE), "TRITON_ADMIN_KEY": key}
    ports = iter(free_ports(6))
    settings = [ServerSettings(admin_key=key, http_port=next(ports), grpc_port=next(ports), metrics_port=next(ports))
                for _ in range(2)]
    a, b = (Container(tag, setting, args.cpus, environment) for tag, setting in zip("AB", settings, strict=True))
    stop = threading.Event()
    counts: dict[str, int] = {}
    try:
        for replica in (a, b):
            wait_until_ready(replica.settings.http_url, 300, alive=lambda c=replica: c.process.poll() is None)
        load = threading.Thread(target=lambda: asyncio.run(soak.load(b.settings, lambda: not stop.is_set(),
                                                                     args.concurrency, counts)), daemon=True)
        load.start()
        time.sleep(5)
        print(f"--cpus {args.cpus if args.cpus is not None else 'none'}; B under {args.concurrency} clients",
              flush=True)
        for index in range(args.kills):
            print(f"round {index}: {one_round(a, b, args.sample_s)}", flush=True)
            if a.process.poll() is not None:
                print(f"A's launcher gave up; see {a.log}", flush=True)
                break
    finally:
        stop.set()
        for replica in (a, b):
            replica.stop()
    errors = {name: count for name, count in counts.items() if name.startswith("error")}
    print(f"B answered {sum(count for name, count in counts.items() if name not in errors)}; errors {errors or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
