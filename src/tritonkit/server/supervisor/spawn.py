"""``spawn``: how the supervisor starts every child (tritonserver, the front, a container's launcher, HAProxy).

Every child runs in a session of its own, so a terminal's Ctrl-C reaches only the owner, which passes on exactly one
signal; and every child is started with ``PR_SET_PDEATHSIG=SIGTERM``, so when the owner dies, even by SIGKILL, the
kernel tells the child to stop and nothing is left running. (The signal follows the thread that started the child:
start servers from a thread that lives as long as they should.)
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Mapping

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def spawn(argv: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None, output=None,
          cpus: set[int] | None = None, batch: bool = False) -> subprocess.Popen:
    """Starts ``argv`` in a session of its own, stopped (SIGTERM) when the calling thread dies.

    Args:
        output: a binary file for stdout and stderr together; ``None`` leaves them on this terminal.
        cpus: CPU numbers to pin the child to; ``None`` leaves it free.
        batch: run it (and what it forks) under ``SCHED_BATCH``: it never preempts others when it wakes.
    """

    def before_exec() -> None:  # runs in the child
        _stop_with_parent()
        if cpus:
            os.sched_setaffinity(0, cpus)
        if batch:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))

    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=output,
                            stderr=subprocess.STDOUT if output is not None else None,
                            start_new_session=True,
                            preexec_fn=before_exec)  # noqa: PLW1509 - prctl(PR_SET_PDEATHSIG) must run in the child before exec


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM when the owning thread dies, SIGKILL included (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not glibc/Linux: the owner's stop() is the only guarantee there
        pass
