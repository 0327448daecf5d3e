"""The server package's exceptions.

Exceptions::

    ServerError              anything the launcher, the supervisor or the front reports
    ├── SettingsError        a setting (flag or environment variable) that cannot work; also a ValueError
    ├── NotExported          a repository names a model that has no version folder yet: run `make export`
    ├── EmbeddedServerError  the embedded tritonserver or its Python stub is missing: run `make setup`
    └── NoEngine             --container, and neither a Docker engine nor podman answers

A server that does not become ready raises the client's ``ServerNotReady`` (``tritonkit.client.errors``): the one
readiness waiter (``tritonkit.client.health``) serves both sides. Each message names the problem and its fix.
"""

from __future__ import annotations


class ServerError(RuntimeError):
    """Base of every error the server package raises."""


class SettingsError(ServerError, ValueError):
    """A setting cannot work; the message names the variable or flag and what it accepts."""


class NotExported(ServerError):
    """A repository names a model that has no version folder yet; the message names them and the fix."""


class EmbeddedServerError(ServerError):
    """The embedded tritonserver or its Python stub is missing; the message names the fix."""


class NoEngine(ServerError):
    """Neither a working Docker engine nor podman; the message names the fix."""
