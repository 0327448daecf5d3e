"""``TritonUser``: an abstract locust User that calls Triton through the project's Client and reports each call.

gRPC needs gevent's cooperative I/O under locust: ``grpc.experimental.gevent.init_gevent()`` runs on import,
before any channel exists. HTTP goes through tritonclient's geventhttpclient, gevent-native already.
"""

from __future__ import annotations

import time

import grpc.experimental.gevent as grpc_gevent
from locust import User

from tritonkit.client import Client, ClientError

grpc_gevent.init_gevent()

PORTS = {"http": 8000, "grpc": 8001}


class TritonUser(User):
    """Subclasses declare tasks that call ``self.call(model, lambda client: client.<helper>(...))``."""

    abstract = True
    protocol = "http"

    def on_start(self):
        options = self.environment.parsed_options
        self.protocol = getattr(options, "triton_protocol", None) or self.protocol
        self.client = Client(self._url(), protocol=self.protocol, timeout_s=30, retries=0)

    def on_stop(self):
        self.client.close()

    def _url(self) -> str:
        host = (self.host or "http://127.0.0.1:8000").removeprefix("http://").removeprefix("https://")
        name = host.rsplit(":", 1)[0]
        if self.protocol == "grpc":
            grpc_port = getattr(self.environment.parsed_options, "grpc_port", None) or PORTS["grpc"]
            return f"{name}:{grpc_port}"
        return host

    def call(self, model: str, action):
        """Runs ``action(client)`` and fires locust's request event (name = model, type = protocol)."""
        start = time.perf_counter()
        exception = None
        try:
            action(self.client)
        except ClientError as exc:  # every server or network error arrives translated
            exception = exc
        self.environment.events.request.fire(
            request_type=self.protocol, name=model, response_time=(time.perf_counter() - start) * 1000.0,
            response_length=0, exception=exception, context={},
        )
