"""tritonkit.cpus: the CPU quota of a container or pod caps the threads, as the kernel's cgroup files say."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tritonkit.cpus import cpu_quota, usable_cpus


def _tree(tmp_path, proc: str, files: dict[str, str]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc_cgroup = tmp_path / "proc_cgroup"
    proc_cgroup.write_text(proc)
    root = tmp_path / "cgroup"
    for name, value in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(value)
    return proc_cgroup, root


def test_v2_quota_is_read_from_cpu_max_and_the_tightest_ancestor_wins(tmp_path):
    proc, root = _tree(tmp_path, "0::/kubepods/pod1/c1\n", {
        "kubepods/cpu.max": "max 100000\n",
        "kubepods/pod1/cpu.max": "150000 100000\n",
        "kubepods/pod1/c1/cpu.max": "400000 100000\n"})
    assert cpu_quota(proc, root) == 1.5
    assert usable_cpus(proc, root) == min(2, len(os.sched_getaffinity(0)))  # 1.5 CPUs round up


def test_v2_unlimited_or_namespaced_cgroups(tmp_path):
    proc, root = _tree(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert cpu_quota(proc, root) is None
    assert usable_cpus(proc, root) == len(os.sched_getaffinity(0))
    # a container without a cgroup namespace: its path is the host's, its own cgroup is mounted at the root
    proc, root = _tree(tmp_path / "ns", "0::/system.slice/docker-1.scope\n", {"cpu.max": "50000 100000\n"})
    assert cpu_quota(proc, root) == 0.5
    assert usable_cpus(proc, root) == 1  # never fewer than one


def test_v1_quota_is_read_from_the_cpu_controller(tmp_path):
    proc, root = _tree(tmp_path, "5:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "cpu,cpuacct/docker/x/cpu.cfs_quota_us": "100000\n",
        "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"})
    assert cpu_quota(proc, root) == 1.0
    assert usable_cpus(proc, root) == 1


def test_unreadable_or_garbled_files_mean_no_quota(tmp_path):
    assert cpu_quota(tmp_path / "missing", tmp_path) is None
    proc, root = _tree(tmp_path, "0::/a\n", {"a/cpu.max": "lots\n"})
    assert cpu_quota(proc, root) is None


CPU_V1 = Path("/sys/fs/cgroup/cpu")


def test_a_real_cgroup_v1_quota_caps_the_threads():
    """A child process moved into a cgroup with a 1-CPU quota sees 1 usable CPU; this one, outside it, more."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU in the affinity mask: a 1-CPU quota would change nothing to see")
    if not (CPU_V1 / "cpu.cfs_quota_us").is_file() or not os.access(CPU_V1, os.W_OK):
        pytest.skip(f"no writable cgroup v1 cpu controller at {CPU_V1} (cgroup v2 or unprivileged): "
                    "the fake-tree tests above cover the parsing")
    if cpu_quota() is not None:
        pytest.skip(f"this process already runs under a CPU quota of {cpu_quota()}")
    group = CPU_V1 / f"tritonkit-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")
        script = (f"import os; open({str(group / 'cgroup.procs')!r}, 'w').write(str(os.getpid())); "
                  "from tritonkit.cpus import usable_cpus, cpu_quota; print(cpu_quota(), usable_cpus())")
        answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
        assert answer.stdout.split() == ["1.0", "1"]
        assert usable_cpus() == len(os.sched_getaffinity(0)) >= 2
    finally:
        group.rmdir()  # the child has exited, so the cgroup is empty
