"""``AsyncClient``: the asyncio counterpart of ``Client`` for many concurrent requests.

    async with AsyncClient("localhost:8001", protocol="grpc") as triton:
        results = await asyncio.gather(*(triton.sentiment(text) for text in texts))

Every option, management call and helper of ``Client`` is here too, as a coroutine: both are built on
``_base.BaseClient`` and differ only in how one call is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import numpy.typing as npt

from tritonkit import catalog
from tritonkit.client import codec
from tritonkit.client._base import BaseClient, Call, Done, Pause, Plan, Step, T, advance
from tritonkit.client.errors import ClientError


class AsyncClient(BaseClient):
    """Same arguments as ``Client``; every call is a coroutine, and one connection pool serves all tasks.

    Create it inside a running event loop (``async with AsyncClient(...)``): its HTTP session and gRPC
    channel belong to that loop.

    Raises:
        ValueError: an option is out of range; the message names the allowed values.
        RuntimeError: no event loop is running.
    """

    _MODULES = {"http": "tritonclient.http.aio", "grpc": "tritonclient.grpc.aio"}

    def _connect(self) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("AsyncClient needs a running event loop: create it inside a coroutine, e.g. "
                               "`async with AsyncClient(...) as triton:` under asyncio.run(...)") from None
        if self.protocol == "http":
            return self._module.InferenceServerClient(self.url, conn_timeout=self.timeout_s)
        return self._module.InferenceServerClient(self.url)  # 2 GB message cap by default, see client.py

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection pool; later calls raise ClientClosed. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._client.close()

    # -- carrying out a plan, awaiting --------------------------------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        try:
            step = advance(plan)
            while not isinstance(step, Done):
                step = advance(plan, *(await self._perform(step)))
            return step.value
        finally:
            plan.close()  # a cancelled plan still runs its cleanup (the shared-memory region)

    async def _perform(self, step: Step) -> tuple[Any, ClientError | None]:
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return None, None
        try:
            return await self._send(step), None
        except ClientError as error:
            return None, error  # for the plan to handle or let rise

    async def _send(self, call: Call) -> Any:
        """One tritonclient call under ``timeout_s``, retried while the server is unavailable."""
        method, kwargs = self._prepare(call)
        attempt = 0
        while True:
            try:
                return await asyncio.wait_for(method(*call.args, **kwargs), self.timeout_s)
            except Exception as exc:  # _retry_delay_s translates it, and raises it unless it is worth a retry
                await asyncio.sleep(self._retry_delay_s(exc, attempt))
            attempt += 1

    # -- health and management ------------------------------------------------------------------

    async def is_ready(self) -> bool:
        """Awaitable ``Client.is_ready``."""
        return await self._run(self._plan_is_ready())

    async def wait_until_ready(self, timeout_s: float = 60.0) -> float:
        """Awaitable ``Client.wait_until_ready``."""
        return await self._run(self._plan_wait_until_ready(timeout_s))

    async def server_metadata(self) -> dict[str, Any]:
        """Awaitable ``Client.server_metadata``."""
        return await self._run(self._plan_server_metadata())

    async def metadata(self, model: str, version: int | None = None) -> dict[str, Any]:
        """Awaitable ``Client.metadata``."""
        return await self._run(self._plan_metadata(model, version))

    async def config(self, model: str) -> dict[str, Any]:
        """Awaitable ``Client.config`` (admin API)."""
        return await self._run(self._plan_config(model))

    async def models(self) -> list[dict[str, Any]]:
        """Awaitable ``Client.models`` (admin API)."""
        return await self._run(self._plan_models())

    async def statistics(self, model: str = "") -> list[dict[str, Any]]:
        """Awaitable ``Client.statistics``."""
        return await self._run(self._plan_statistics(model))

    async def load(self, model: str) -> None:
        """Awaitable ``Client.load`` (admin API, MODEL_CONTROL=explicit)."""
        await self._run(self._plan_load(model))

    async def unload(self, model: str) -> None:
        """Awaitable ``Client.unload`` (admin API, MODEL_CONTROL=explicit)."""
        await self._run(self._plan_unload(model))

    # -- inference ------------------------------------------------------------------------------

    async def infer(self, model: str, inputs: dict[str, npt.NDArray[Any]], *, outputs: Sequence[str] | None = None,
                    version: int | None = None) -> dict[str, npt.NDArray[Any]]:
        """Awaitable ``Client.infer``: splits inputs longer than the model's max_batch_size."""
        return await self._run(self._plan_infer(model, inputs, outputs, version))

    async def infer_with_shared_memory(self, model: str, inputs: dict[str, npt.NDArray[Any]], *,
                                       outputs: Sequence[str] | None = None,
                                       version: int | None = None) -> dict[str, npt.NDArray[Any]]:
        """Awaitable ``Client.infer_with_shared_memory`` (same host, admin key)."""
        return await self._run(self._plan_infer_with_shared_memory(model, inputs, outputs, version))

    # -- typed helpers per public endpoint --------------------------------------------------------

    async def embed(self, texts: Sequence[str] | str, *,
                    model: str = catalog.EMBEDDING_ENDPOINTS[0]) -> npt.NDArray[Any]:
        """Awaitable ``Client.embed``."""
        return await self._run(self._plan_embed(texts, model))

    async def sentiment(self, texts: Sequence[str] | str, *, model: str = catalog.SENTIMENT_ENDPOINTS[0],
                        version: int | None = None) -> list[codec.Prediction]:
        """Awaitable ``Client.sentiment``."""
        return await self._run(self._plan_sentiment(texts, model, version))

    async def classify_digit(self, images: codec.Image | Iterable[codec.Image]) -> list[codec.Prediction]:
        """Awaitable ``Client.classify_digit``."""
        return await self._run(self._plan_classify_digit(images))

    async def predict_diabetes(self, rows: npt.ArrayLike) -> npt.NDArray[Any]:
        """Awaitable ``Client.predict_diabetes``."""
        return await self._run(self._plan_predict_diabetes(rows))

    async def recommend(self, users: Sequence[int] | int, k: int = 10) -> list[list[codec.Recommendation]]:
        """Awaitable ``Client.recommend``."""
        return await self._run(self._plan_recommend(users, k))

    async def predict_cancer(self, rows: npt.ArrayLike) -> npt.NDArray[Any]:
        """Awaitable ``Client.predict_cancer``."""
        return await self._run(self._plan_predict_cancer(rows))
