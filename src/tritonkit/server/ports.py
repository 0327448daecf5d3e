"""Free loopback ports, for tests and scenarios that start their own server."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on loopback (closed again, so a server can bind them)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
