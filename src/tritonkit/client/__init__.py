"""A thin, typed client over tritonclient (HTTP and gRPC) for this repository's endpoints.

    from tritonkit.client import Client
    with Client("localhost:8001", protocol="grpc") as triton:
        triton.sentiment(["Great food!"])      # [Prediction(label='positive', probabilities={...})]

It imports no torch, transformers or tensorrt: ``pip install '.[client]'`` is enough. Names are loaded on
first use, so ``client.health`` (standard library only) serves the launcher without numpy or tritonclient.
"""

import importlib

_EXPORTS = {
    "Client": "tritonkit.client.client",
    "AsyncClient": "tritonkit.client.aio",
    "Prediction": "tritonkit.client.codec",
    "ClientClosed": "tritonkit.client.errors",
    "ClientError": "tritonkit.client.errors",
    "Forbidden": "tritonkit.client.errors",
    "InvalidInput": "tritonkit.client.errors",
    "ModelNotFound": "tritonkit.client.errors",
    "ServerUnavailable": "tritonkit.client.errors",
    "Timeout": "tritonkit.client.errors",
    "ServerNotReady": "tritonkit.client.health",
    "wait_until_ready": "tritonkit.client.health",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tritonkit.client' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
