"""``ServerProcess``: what every server the supervisor owns can do, whichever runs it.

    TritonServer     the embedded binary and its front, or the launcher (process.py)
    ContainerServer  the launcher in a container that docker or podman runs (container.py)

The benchmark's fleets and ``deploy.replicas`` hold either through this class alone. A server is a context manager:
started, ready and supervised when entered, stopped (gracefully, then forcibly) on the way out.
"""

from __future__ import annotations

import abc
from typing import Self

from tritonkit.server.settings import ServerSettings

READY_TIMEOUT_S = 120  # loading every model on 2 shared cores; a load error ends the wait sooner


class ServerProcess(abc.ABC):
    """A server this process owns. ``settings`` says where it answers."""

    settings: ServerSettings

    @abc.abstractmethod
    def start(self) -> Self:
        """Starts it without waiting for readiness."""

    @abc.abstractmethod
    def wait_until_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Polls readiness; returns the seconds waited (``ServerNotReady`` on the deadline or an exit)."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """True while it runs."""

    @property
    @abc.abstractmethod
    def pid(self) -> int:
        """The pid to signal for a fault drill: tritonserver, or the launcher that owns it."""

    @abc.abstractmethod
    def stop(self, timeout_s: float | None = None) -> int:
        """Stops it (gracefully first) and returns its exit code; a second call returns at once."""

    def supervise(self) -> None:  # noqa: B027 - a server with nothing to supervise needs nothing here
        """Starts watching it once it is ready (the embedded server's watchdog); a no-op where its own launcher
        supervises it (the launcher, a container)."""

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_until_ready()
            self.supervise()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_) -> None:
        self.stop()
