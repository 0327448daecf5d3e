"""Closed-loop load: N workers, each sends its next request as soon as its last one answered.

One asyncio loop drives every system (tritonclient's asyncio clients for Triton, aiohttp for Flask),
so the generator costs the same for all of them and stays on its own core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

import numpy as np

P99_MIN_REQUESTS = 1000  # fewer requests than this and a p99 is not quoted


@dataclasses.dataclass
class Sample:
    """One measured point: its latencies (seconds), errors and wall time."""

    latencies: list[float]
    errors: int
    first_error: str | None
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        """Latency percentile in milliseconds; the p99 only from 1000 requests up."""
        if not self.latencies or (q >= 99 and len(self.latencies) < P99_MIN_REQUESTS):
            return None
        return float(np.percentile(self.latencies, q) * 1000.0)


class Target:
    """A system under test: ``call(index)`` sends request ``index`` (inputs cycle) and checks the answer."""

    name: str

    async def open(self) -> None: ...

    async def call(self, index: int) -> None:
        raise NotImplementedError

    async def close(self) -> None: ...


class TritonTarget(Target):
    """A Triton model with one BYTES input, over gRPC or HTTP (binary tensors both ways)."""

    def __init__(self, name: str, protocol: str, url: str, model: str, *, input_name: str,
                 payloads: Sequence[bytes], outputs: Sequence[str]):
        self.name, self.protocol, self.url, self.model = name, protocol, url, model
        self.input_name, self.payloads, self.outputs = input_name, payloads, list(outputs)
        self.client = None

    async def open(self) -> None:
        if self.protocol == "grpc":
            import tritonclient.grpc.aio as module
        else:
            import tritonclient.http.aio as module
        self.module = module
        self.client = module.InferenceServerClient(self.url, conn_limit=256) if self.protocol == "http" \
            else module.InferenceServerClient(self.url)

    async def call(self, index: int) -> None:
        tensor = self.module.InferInput(self.input_name, [1, 1], "BYTES")
        data = np.array([[self.payloads[index % len(self.payloads)]]], dtype=np.object_)
        if self.protocol == "http":
            tensor.set_data_from_numpy(data, binary_data=True)
            outputs = [self.module.InferRequestedOutput(name, binary_data=True) for name in self.outputs]
        else:
            tensor.set_data_from_numpy(data)
            outputs = [self.module.InferRequestedOutput(name) for name in self.outputs]
        result = await self.client.infer(self.model, [tensor], outputs=outputs)
        if result.as_numpy(self.outputs[0]) is None:
            raise RuntimeError(f"{self.model} answered without {self.outputs[0]}")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


class FlaskTarget(Target):
    """The baseline's ``POST /predict``: JSON ``{"text": ...}`` or the raw image bytes."""

    def __init__(self, name: str, url: str, payloads: Sequence, json_key: str | None):
        self.name, self.url, self.payloads, self.json_key = name, url, payloads, json_key
        self.session = None

    async def open(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def call(self, index: int) -> None:
        payload = self.payloads[index % len(self.payloads)]
        if self.json_key:
            request = self.session.post(self.url, json={self.json_key: payload})
        else:
            request = self.session.post(self.url, data=payload, headers={"Content-Type": "application/octet-stream"})
        async with request as response:
            body = await response.json()
            if response.status != 200 or "label" not in body:
                raise RuntimeError(f"baseline answered {response.status}: {body}")

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


async def closed_loop(target: Target, concurrency: int, requests: int, max_seconds: float,
                      start_index: int = 0) -> Sample:
    """Runs ``concurrency`` workers until ``requests`` answered or ``max_seconds`` passed."""
    latencies: list[float] = []
    errors = [0]
    first_error: list[str] = []
    counter = iter(range(start_index, start_index + 10**9))
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker():
        while time.perf_counter() < deadline:
            index = next(counter)
            if index - start_index >= requests:  # exactly ``requests`` are sent, none beyond
                return
            begin = time.perf_counter()
            try:
                await target.call(index)
            except Exception as exc:
                errors[0] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            latencies.append(time.perf_counter() - begin)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(latencies, errors[0], first_error[0] if first_error else None, time.perf_counter() - started)
