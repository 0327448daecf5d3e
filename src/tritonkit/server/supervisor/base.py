"""``ServerProcess``: what every server the supervisor owns can do, whichever runs it.

    TritonServer     the embedded binary and its front, or the launcher (process.py)
    ContainerServer  the launcher in a container that docker or podman runs (container.py)

The benchmark's fleets and ``deploy.replicas`` hold either through this class alone. A server is a context manager
(``Owned``, which ``deploy.replicas.Replicas`` is too): started, ready and supervised when entered, stopped
(gracefully, then forcibly) on the way out.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from tritonkit.server.settings import ServerSettings

if TYPE_CHECKING:  # typing.Self is Python 3.11; the NGC 24.10 image runs the launcher on 3.10
    from typing import Self

READY_TIMEOUT_S = 120  # loading every model on 2 shared cores; a load error ends the wait sooner


class Owned(abc.ABC):
    """Processes this one starts, waits for and stops together: one server, or replicas and their balancer
    (``deploy.replicas.Replicas``). A context manager."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Starts them without waiting for readiness."""

    @abc.abstractmethod
    def wait_until_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Polls readiness; returns the seconds waited (``ServerNotReady`` on the deadline or an exit)."""

    @abc.abstractmethod
    def stop(self, timeout_s: float | None = None) -> int:
        """Stops them (gracefully first) and returns the exit code; a second call returns at once."""

    def supervise(self) -> None:  # noqa: B027 - what has nothing to supervise needs nothing here
        """Starts watching them once they are ready (the embedded server's watchdog); a no-op where they supervise
        themselves (the launcher, a container)."""


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


class ServerProcess(Owned):
    """A server this process owns. ``settings`` says where it answers."""

    settings: ServerSettings

    @abc.abstractmethod
    def alive(self) -> bool:
        """True while it runs."""

    @property
    @abc.abstractmethod
    def pid(self) -> int:
        """The pid to signal for a fault drill: tritonserver, or the launcher that owns it."""
