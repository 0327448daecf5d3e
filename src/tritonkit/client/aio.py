"""``AsyncClient``: the asyncio counterpart of ``Client`` for many concurrent requests.

    async with AsyncClient("localhost:8001", protocol="grpc") as triton:
        results = await asyncio.gather(*(triton.sentiment(text) for text in texts))
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from tritonkit.client import codec
from tritonkit.client.client import PROTOCOLS, _triton_dtype, _version, backoff_s
from tritonkit.client.errors import ClientClosed, ServerUnavailable, translate


class AsyncClient:
    """Same arguments as ``Client``; every call is a coroutine. One connection pool serves all tasks."""

    def __init__(self, url: str = "localhost:8000", *, protocol: str = "http", timeout_s: float = 30.0,
                 retries: int = 3):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol={protocol!r}; use 'http' or 'grpc'")
        self.url = url.removeprefix("http://")
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.retries = retries
        self._closed = False
        if protocol == "http":
            import tritonclient.http.aio as module

            self._client = module.InferenceServerClient(self.url, conn_timeout=timeout_s)
        else:
            import tritonclient.grpc.aio as module

            self._client = module.InferenceServerClient(self.url)  # 2 GB message cap by default, see client.py
        self._module = module

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_) -> None:
        await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()

    async def _call(self, method: str, *args, **kwargs):
        if self._closed:
            raise ClientClosed("this AsyncClient is closed; create a new one")
        for attempt in range(self.retries + 1):
            try:
                return await asyncio.wait_for(getattr(self._client, method)(*args, **kwargs), self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - translated at this one boundary
                error = translate(exc)
                if not isinstance(error, ServerUnavailable) or attempt == self.retries:
                    raise error from exc
            await asyncio.sleep(backoff_s(attempt))
        raise AssertionError("unreachable")

    async def is_ready(self) -> bool:
        try:
            return bool(await self._call("is_server_ready"))
        except ServerUnavailable:
            return False

    async def infer(self, model: str, inputs: dict[str, np.ndarray], *, outputs: Sequence[str],
                    version: int | None = None) -> dict[str, np.ndarray]:
        """One request (no splitting: send at most the model's max_batch_size rows)."""
        tensors = []
        for name, array in inputs.items():
            tensor = self._module.InferInput(name, list(array.shape), _triton_dtype(array))
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        requested = [self._module.InferRequestedOutput(name) for name in outputs]
        result = await self._call("infer", model, tensors, model_version=_version(version), outputs=requested)
        return {name: result.as_numpy(name) for name in outputs}

    async def embed(self, texts: Sequence[str] | str) -> np.ndarray:
        return (await self.infer("text_embedding", codec.texts_input(texts), outputs=["EMBEDDING"]))["EMBEDDING"]

    async def sentiment(self, texts: Sequence[str] | str, *, model: str = "text_sentiment",
                        version: int | None = None) -> list[codec.Prediction]:
        out = await self.infer(model, codec.texts_input(texts), outputs=["LABEL", "PROBABILITIES"], version=version)
        return codec.predictions(out, codec.SENTIMENT_LABELS)

    async def classify_digit(self, images) -> list[codec.Prediction]:
        out = await self.infer("digit_classifier", codec.images_input(images), outputs=["LABEL", "PROBABILITIES"])
        return codec.predictions(out, codec.DIGIT_LABELS)
