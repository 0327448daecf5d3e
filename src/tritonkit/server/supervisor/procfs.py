"""What the supervisor reads of its processes in /proc: children, Python stubs and the orphans of a dead server.

A stub's command line is ``triton_python_backend_stub MODEL_FILE REGION DEFAULT_SIZE GROWTH_SIZE PARENT_PID ...``:
the model file names the model and version, the region its ``/dev/shm`` file, the parent pid its tritonserver (which
still names it after that server died, when the stub is nobody's child).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from pathlib import Path

STUB = "triton_python_backend_stub"


@dataclasses.dataclass(frozen=True)
class Stub:
    """One Python stub process under tritonserver."""

    pid: int
    model: str
    version: str
    state: str  # /proc state letter: R, S, D, T (stopped), Z (zombie)...


def children_of(pid: int) -> list[int]:
    """The pids of ``pid``'s children, from /proc (every thread's list: a child belongs to the thread that made it)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def child_running(pid: int, marker: bytes) -> int | None:
    """The first child of ``pid`` whose command line contains ``marker``, or None."""
    for child in children_of(pid):
        try:
            if marker in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


def tritonserver_of(launcher_pid: int) -> int | None:
    """The pid of the tritonserver a launcher (``python -m tritonkit.server``) runs now, or None."""
    return child_running(launcher_pid, b"/tritonserver\0")


def stubs_of(server_pid: int) -> list[Stub]:
    """The stub processes that are children of ``server_pid``."""
    return [stub for stub in map(_stub, children_of(server_pid)) if stub is not None]


def reread(stubs: list[Stub], server_pid: int) -> list[Stub]:
    """``stubs`` with their state read again; a gone one (or its pid now another process's) is left out."""
    found = []
    for stub in stubs:
        try:
            fields = Path(f"/proc/{stub.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(server_pid):  # field 4: the parent's pid
            found.append(dataclasses.replace(stub, state=fields[0]))
    return found


def _stub_argv(pid: int) -> list[bytes] | None:
    """A stub's command line (``stub model_file region default_size growth_size parent_pid ...``), or None for any
    other process (or one gone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return argv if argv[0].endswith(STUB.encode()) and len(argv) > 1 else None


def _stub(pid: int) -> Stub | None:
    argv = _stub_argv(pid)
    if argv is None:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    model_file = Path(argv[1].decode())  # <repository>/<model>/<version>/model.py|model.onnx
    if len(model_file.parts) < 3:
        return None
    return Stub(pid, model_file.parts[-3], model_file.parts[-2], state)


ORPHAN_EXIT_S = 5.0  # a killed tritonserver's stubs, killed in turn, are gone within this


def orphans_of(server_pid: int) -> dict[int, str]:
    """The stubs a dead tritonserver left (pid -> its shared-memory region), found by the parent pid in their
    command line: they are nobody's children now."""
    found = {}
    for entry in Path("/proc").iterdir():
        argv = _stub_argv(int(entry.name)) if entry.name.isdigit() else None
        if argv is not None and len(argv) > 5 and argv[5] == str(server_pid).encode():
            found[int(entry.name)] = argv[2].decode(errors="replace")
    return found


def clear_orphans(server_pid: int, shm_dir: Path = Path("/dev/shm")) -> int:
    """Kills the stubs a dead ``server_pid`` left, waits until they are gone, and removes their shared-memory
    regions; returns how many there were.

    A tritonserver killed with SIGKILL leaves its stubs running until each notices (they poll every 300 ms), and
    their regions in ``/dev/shm`` for good (1 MiB or more each, 18 for our repositories).
    """
    orphans = orphans_of(server_pid)
    for pid in orphans:
        kill(pid)
    deadline = time.monotonic() + ORPHAN_EXIT_S
    while orphans_of(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL lands asynchronously; a dead stub's command line reads empty at once
    for region in orphans.values():
        if region and "/" not in region:
            with contextlib.suppress(OSError):
                (shm_dir / region).unlink()
    return len(orphans)



def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died meanwhile: what we wanted
        os.kill(pid, signal.SIGKILL)
