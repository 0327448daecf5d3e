"""Orphaned shared-memory regions are swept; a region some process maps (a live stub's) never is."""

import os
import subprocess
import sys
import time
import uuid

import pytest

from tritonkit.server.supervisor import shm

MAPPER = """
import mmap, sys, time
with open(sys.argv[1], "r+b") as handle:
    region = mmap.mmap(handle.fileno(), 4096)
    print("mapped", flush=True)
    time.sleep(60)
"""


def _region(folder, age_s: float):
    path = folder / f"triton_python_backend_shm_region_{uuid.uuid4()}"
    path.write_bytes(b"\0" * 4096)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


@pytest.fixture
def shm_dir():
    if not shm.SHM_DIR.is_dir():
        pytest.skip("no /dev/shm on this machine")
    return shm.SHM_DIR  # mapped_regions reads real mappings, so the regions must live where processes map them


def test_sweep_removes_an_old_unmapped_region_and_keeps_a_mapped_and_a_fresh_one(shm_dir):
    orphan, live, fresh = _region(shm_dir, 120), _region(shm_dir, 120), _region(shm_dir, 0)
    other = shm_dir / f"not_triton_{uuid.uuid4()}"
    other.write_bytes(b"x")
    os.utime(other, (time.time() - 120, time.time() - 120))
    holder = subprocess.Popen([sys.executable, "-c", MAPPER, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "mapped"
        swept = shm.sweep(shm_dir)
        assert orphan.name in swept and not orphan.exists()
        assert live.exists() and fresh.exists() and other.exists()
    finally:
        holder.kill()
        holder.wait()
        for path in (live, fresh, other):
            path.unlink(missing_ok=True)


def test_a_region_whose_mapper_died_is_swept(shm_dir):
    region = _region(shm_dir, 120)
    holder = subprocess.Popen([sys.executable, "-c", MAPPER, str(region)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "mapped"
    assert region.name not in shm.sweep(shm_dir)
    holder.kill()  # SIGKILL: nothing unlinks it, as with a killed stub
    holder.wait()
    assert region.name in shm.sweep(shm_dir)
    assert not region.exists()
