"""The client's exceptions, and the one place where tritonclient's and the network's errors are translated.

Exceptions::

    ClientError              anything the client reports
    ├── ServerUnavailable    connection refused or reset, HTTP 503, gRPC UNAVAILABLE: retried, then raised
    │   └── ServerNotReady   not ready by a deadline (also a TimeoutError): the client's, the launcher's, the tests'
    ├── Timeout              the call took longer than timeout_s
    ├── ModelNotFound        the server has no such model (or version)
    ├── InvalidInput         the server refused the request (HTTP 4xx, INVALID_ARGUMENT); .message is its own
    ├── Forbidden            an admin API without the right admin key (TRITON_ADMIN_KEY)
    └── ClientClosed         the client was used after close()

Only ServerUnavailable is transient: the client retries it (never a 4xx).
"""

from __future__ import annotations

import asyncio
import re
import socket

from tritonclient.utils import InferenceServerException

BATCH_LIMIT = re.compile(r"batch-size must be <= (\d+)")


class ClientError(Exception):
    """Base of every error the client raises; ``message`` is the server's text when there is one."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ServerUnavailable(ClientError):
    """The server cannot be reached or is not ready (transient: retried with backoff first)."""


class ServerNotReady(ServerUnavailable, TimeoutError):
    """The server did not report ready within the deadline, or its process exited first (``health.wait_until_ready``
    and ``Client.wait_until_ready`` both raise it)."""


class Timeout(ClientError):
    """The call did not finish within the client's timeout_s."""


class ModelNotFound(ClientError):
    """The server has no model (or version) of that name."""


class InvalidInput(ClientError):
    """The server refused the inputs; the message says why."""

    @property
    def batch_limit(self) -> int | None:
        """The model's max_batch_size when the refusal was for a too-large batch."""
        match = BATCH_LIMIT.search(self.message)
        return int(match.group(1)) if match else None


class Forbidden(ClientError):
    """An admin API (repository, config, shared memory, logging, trace) without the right admin key."""


class ClientClosed(ClientError):
    """The client was used after close()."""


def translate(exc: BaseException) -> ClientError:
    """Maps a tritonclient or network exception to the client's own tree (callers ``raise ... from exc``)."""
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, InferenceServerException):
        return _from_server(str(exc.status() or ""), exc.message() or str(exc))
    # asyncio.TimeoutError is not the builtin TimeoutError before Python 3.11; gevent's is named Timeout.
    if isinstance(exc, (socket.timeout, TimeoutError, asyncio.TimeoutError)) or type(exc).__name__ == "Timeout":
        return Timeout(f"no answer within the timeout ({exc or 'timed out'}); raise timeout_s or retry later")
    if isinstance(exc, (ConnectionError, OSError)) or _is_aiohttp_disconnect(exc):
        return ServerUnavailable(f"cannot reach the server: {exc or type(exc).__name__}; is it running (make serve)?")
    return ClientError(f"{type(exc).__name__}: {exc}")


def _is_aiohttp_disconnect(exc: BaseException) -> bool:
    """aiohttp's ServerDisconnectedError (the server closed a pooled connection) is no OSError, yet transient."""
    return any(cls.__name__ == "ClientConnectionError" and cls.__module__.startswith("aiohttp")
               for cls in type(exc).__mro__)


def _from_server(status: str, message: str) -> ClientError:
    lowered = message.lower()
    if "is restricted" in lowered:  # gRPC reports it as UNAVAILABLE: it must not look transient
        return Forbidden(f"{message}; pass admin_key= (or set TRITON_ADMIN_KEY for the CLI)")
    if "unknown model" in lowered or "is not found" in lowered or status in ("404", "StatusCode.NOT_FOUND"):
        return ModelNotFound(message)
    if status in ("503", "StatusCode.UNAVAILABLE"):
        return ServerUnavailable(message)
    if status == "StatusCode.DEADLINE_EXCEEDED" or "deadline exceeded" in lowered:
        return Timeout(message)
    if status.startswith("4") or status == "StatusCode.INVALID_ARGUMENT":
        return InvalidInput(message)
    return ClientError(message)
