"""Who uses the server's CPU during a point: per process and thread of a launcher's tree, from /proc."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from tritonkit.server.supervisor.procfs import children_of

TICKS = os.sysconf("SC_CLK_TCK")



def _label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    program = os.path.basename(argv[0].decode())
    if program == "triton_python_backend_stub" and len(argv) > 1:
        return "stub " + Path(argv[1].decode()).parts[-3]  # <repository>/<model>/<version>/model.*
    if any(arg.endswith(b"server.front") for arg in argv):
        return "front (HTTP and gRPC)"  # python -m tritonkit.server.front
    if any(arg.endswith(b"tritonkit.server") for arg in argv):
        return "launcher (watchdog)"
    return program


def snapshot(root: int) -> dict[tuple[str, int], int]:
    """CPU ticks per (process label, thread id) of ``root`` and every descendant."""
    ticks, queue = {}, [root]
    while queue:
        pid = queue.pop()
        queue += children_of(pid)
        label = _label(pid)
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[(label, int(stat.parent.name))] = int(fields[11]) + int(fields[12])
    return ticks


def shares(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Percent of one CPU per process label; tritonserver's busiest thread is listed on its own."""
    used = {key: value - before.get(key, 0) for key, value in after.items()}
    server_threads = {key: value for key, value in used.items() if key[0] == "tritonserver"}
    busiest = max(server_threads, key=server_threads.get, default=None)
    totals: Counter = Counter()
    for key, value in used.items():
        name = "tritonserver busiest thread" if key == busiest else (
            "tritonserver other threads" if key[0] == "tritonserver" else key[0])
        totals[name] += value
    return {name: round(value / TICKS / seconds * 100, 1) for name, value in totals.most_common() if value > 0}
