"""A thin, typed client over tritonclient (HTTP and gRPC) for this repository's endpoints.

    from client import Client
    with Client("localhost:8001", protocol="grpc") as triton:
        triton.sentiment(["Great food!"])      # [Prediction(label='positive', probabilities={...})]

It imports no torch, transformers or tensorrt: ``pip install '.[client]'`` is enough. Names are loaded on
first use, so ``client.health`` (standard library only) serves the launcher without numpy or tritonclient.
"""

import importlib

_EXPORTS = {
    "Client": "client.client",
    "AsyncClient": "client.aio",
    "Prediction": "client.codec",
    "ClientClosed": "client.errors",
    "ClientError": "client.errors",
    "Forbidden": "client.errors",
    "InvalidInput": "client.errors",
    "ModelNotFound": "client.errors",
    "ServerUnavailable": "client.errors",
    "Timeout": "client.errors",
    "ServerNotReady": "client.health",
    "wait_until_ready": "client.health",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'client' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
