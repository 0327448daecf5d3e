"""Shared-memory regions in ``/dev/shm`` that no process maps any more: the leftovers of killed stubs.

The Python backend (and our Python-based ONNX Runtime backend) passes tensors through a region per stub,
``triton_<backend>_shm_region_<uuid>`` (1 MiB and more). A stub or tritonserver killed with SIGKILL cannot unlink
its region, and nothing else does: over days they fill ``/dev/shm`` (64 MiB by default in a container). A region is
swept only when all of these hold, so a live stub's region, this server's or another's on the same host, is never
touched:
  - its name is a Triton backend region's and it belongs to this user (only its owner may unlink it anyway);
  - no process of this user maps it (``/proc/<pid>/maps``; a running stub and its tritonserver both map theirs);
  - it was not changed for ``MIN_AGE_S`` (a region being created is not mapped yet for an instant).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
REGION = re.compile(r"^triton_\w+_shm_region_[0-9a-f-]+$")
MIN_AGE_S = 30.0


def mapped_regions(shm_dir: Path = SHM_DIR) -> set[str] | None:
    """Names of the files under ``shm_dir`` that some process of this user maps; None when a Triton process of this
    user could not be read (then nothing is safe to sweep)."""
    mapped: set[str] = set()
    prefix = f"{shm_dir}/"
    uid = os.getuid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            maps = (entry / "maps").read_text(errors="replace")
        except FileNotFoundError:
            continue  # exited meanwhile
        except PermissionError:  # a process we may not trace (a sandbox's init): unsafe only if it is Triton's
            if _is_triton(entry):
                return None
            continue
        for line in maps.splitlines():
            fields = line.split(maxsplit=5)  # address perms offset dev inode [path]
            path = fields[5] if len(fields) == 6 else ""
            if path.startswith(prefix):
                mapped.add(path[len(prefix):].removesuffix(" (deleted)"))
    return mapped


def _is_triton(entry: Path) -> bool:
    try:
        command = (entry / "cmdline").read_bytes()
    except OSError:
        return True  # cannot tell: assume the worst
    return b"tritonserver" in command or b"triton_python_backend_stub" in command


def sweep(shm_dir: Path = SHM_DIR, min_age_s: float = MIN_AGE_S) -> list[str]:
    """Unlinks the orphaned Triton regions of this user (see the module docstring); returns their names."""
    if not shm_dir.is_dir():
        return []
    candidates = [path for path in shm_dir.iterdir() if REGION.match(path.name)]
    if not candidates:
        return []
    mapped = mapped_regions(shm_dir)
    if mapped is None:
        return []
    now, uid, swept = time.time(), os.getuid(), []
    for path in candidates:
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        if status.st_uid != uid or path.name in mapped or now - status.st_mtime < min_age_s:
            continue
        with contextlib.suppress(FileNotFoundError, PermissionError):
            path.unlink()
            swept.append(path.name)
    return swept
