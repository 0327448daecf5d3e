"""A thin, typed client over tritonclient (HTTP and gRPC) for this repository's endpoints.

    from tritonkit.client import Client
    with Client("localhost:8001", protocol="grpc") as triton:
        triton.sentiment(["Great food!"])      # [Prediction(label='positive', probabilities={...})]

``AsyncClient`` has the same options, calls and helpers as coroutines. It imports no torch, transformers or
tensorrt: ``pip install '.[client]'`` is enough. Names are loaded on first use, so ``client.health``
(standard library only) serves the launcher without numpy or tritonclient.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names for type checkers; at run time __getattr__ loads them on first use
    from tritonkit.client.aio import AsyncClient
    from tritonkit.client.client import Client, ClientOptions
    from tritonkit.client.codec import Prediction
    from tritonkit.client.errors import (
        ClientClosed,
        ClientError,
        Forbidden,
        InvalidInput,
        ModelNotFound,
        ServerNotReady,
        ServerUnavailable,
        Timeout,
    )
    from tritonkit.client.health import wait_until_ready

_EXPORTS = {
    "Client": "tritonkit.client.client",
    "ClientOptions": "tritonkit.client.client",
    "AsyncClient": "tritonkit.client.aio",
    "Prediction": "tritonkit.client.codec",
    "ClientClosed": "tritonkit.client.errors",
    "ClientError": "tritonkit.client.errors",
    "Forbidden": "tritonkit.client.errors",
    "InvalidInput": "tritonkit.client.errors",
    "ModelNotFound": "tritonkit.client.errors",
    "ServerUnavailable": "tritonkit.client.errors",
    "Timeout": "tritonkit.client.errors",
    "ServerNotReady": "tritonkit.client.errors",
    "wait_until_ready": "tritonkit.client.health",
}
__all__ = [  # the same names as _EXPORTS (a unit test checks), written out for tools that read __all__
    "AsyncClient", "Client", "ClientClosed", "ClientError", "ClientOptions", "Forbidden", "InvalidInput",
    "ModelNotFound", "Prediction", "ServerNotReady", "ServerUnavailable", "Timeout", "wait_until_ready",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tritonkit.client' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
