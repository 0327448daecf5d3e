"""How many CPUs this process can keep busy: the CPUs it may run on, capped by its cgroup's CPU quota.

``os.sched_getaffinity`` sees ``taskset`` and cpusets, but not a container's or pod's CPU limit (``docker run
--cpus 1``, a Kubernetes ``limits.cpu``): that is a CFS quota, CPU time a period enforced by throttling, and the
process still sees every core of the host. A pool of spinning threads sized to the cores then spends the quota
on waiting and is throttled mid-request. ``usable_cpus`` rounds a fractional quota up (1.5 CPUs: 2 threads, as
the replicas' containers have run since they were measured) and never answers less than 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(proc_cgroup: Path = PROC_CGROUP, cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs in this process's affinity mask, at most its CPU quota rounded up; at least 1."""
    cpus = len(os.sched_getaffinity(0))
    quota = cpu_quota(proc_cgroup, cgroup_root)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


def cpu_quota(proc_cgroup: Path = PROC_CGROUP, cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """The tightest CPU quota (in CPUs) over this process's cgroup and its ancestors, or None when unlimited or
    unreadable. cgroup v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) where the ``cpu`` controller is mounted
    that way, else cgroup v2 (``cpu.max``)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    v2_path = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            for mount in ("cpu,cpuacct", "cpu"):
                if (cgroup_root / mount / "cpu.cfs_quota_us").is_file():
                    return _tightest(cgroup_root / mount, path, _v1_quota)
        elif controllers == "":
            v2_path = path
    return None if v2_path is None else _tightest(cgroup_root, v2_path, _v2_quota)


def _tightest(mount: Path, path: str, read) -> float | None:
    """The lowest quota from the cgroup's folder up to the mount (limits nest). A cgroup namespace or a bind
    mount shows the process's own cgroup at the mount itself, so a path missing under the mount reads the mount."""
    folder = mount / path.strip("/")
    folders = [f for f in (folder, *folder.parents) if f.is_relative_to(mount)] if folder.is_dir() else [mount]
    quotas = [quota for f in folders if (quota := read(f)) is not None]
    return min(quotas, default=None)


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()
        return int(quota) / int(period) if quota != "max" and int(period) > 0 else None
    except (OSError, ValueError):
        return None
