"""/dev/shm regions that killed stubs left are swept when a server starts and after a stub's recovery, while a
region a live process maps (another server's stub, here a stand-in) stays."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest
from conftest import serving

from tritonkit.server.supervisor import shm

pytestmark = pytest.mark.integration
MAPPER = "import mmap, sys, time\nf = open(sys.argv[1], 'r+b'); m = mmap.mmap(f.fileno(), 4096); print('mapped', " \
         "flush=True); time.sleep(120)"


def _region(age_s: float):
    path = shm.SHM_DIR / f"triton_python_backend_shm_region_{uuid.uuid4()}"
    path.write_bytes(b"\0" * 4096)
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def _parent(pid: int) -> int | None:
    try:
        return int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _stub_pids(model: str, launcher_pid: int) -> list[int]:
    """Stubs of ``model`` run by the tritonserver that ``launcher_pid`` started (another test's server may serve
    the same repository); a stub names its tritonserver's pid as its sixth argument."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (len(argv) > 5 and argv[0].endswith(b"triton_python_backend_stub") and model.encode() in argv[1]
                    and argv[5].isdigit() and _parent(int(argv[5])) == launcher_pid):
                found.append(int(entry))
    return found


def test_orphaned_regions_are_swept_at_start_and_after_a_recovery_and_a_mapped_one_stays(tmp_path, test_repository):
    if not shm.SHM_DIR.is_dir():
        pytest.skip("no /dev/shm on this machine")
    orphan, live = _region(120), _region(120)
    holder = subprocess.Popen([sys.executable, "-c", MAPPER, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "mapped"
        with serving(tmp_path / "server.log", [test_repository]) as server:
            assert not orphan.exists(), "the launcher left an orphaned region at start"
            assert live.exists(), "the launcher removed a region a live process maps"
            later = _region(120)  # left by a stub killed while the server runs
            (stub,) = _stub_pids("stuck", server.pid)
            os.kill(stub, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while later.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not later.exists(), f"not swept after the recovery:\n{server.log()[-3000:]}"
            assert live.exists()
    finally:
        holder.kill()
        holder.wait()
        live.unlink(missing_ok=True)
