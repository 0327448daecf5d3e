"""What ``Client`` and ``AsyncClient`` share: options, state and the logic of every call, written once.

Each public call is a *plan*: a generator that yields the steps it needs (``Call``: one tritonclient method;
``Pause``: a wait) and is sent their answers. Batch splitting, shared-memory cleanup and readiness polling
thus exist once; the two clients differ only in how they carry out a step: ``Client`` blocks (a retry loop
with ``time.sleep``), ``AsyncClient`` awaits (a retry loop under ``asyncio.wait_for``). A failed step reaches
the plan already translated (``errors.translate``), thrown in at the ``yield`` that asked for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import random
import time
import uuid
from collections.abc import Generator, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

import numpy.typing as npt
from tritonclient.utils import shared_memory as shm

from tritonkit import catalog
from tritonkit.client import _tensors, codec
from tritonkit.client.errors import (
    ClientClosed,
    ClientError,
    InvalidInput,
    ServerNotReady,
    ServerUnavailable,
    translate,
)

ADMIN_HEADER = "triton-admin-key"
GRPC_ADMIN_HEADER = f"triton-grpc-protocol-{ADMIN_HEADER}"  # Triton prefixes the key on gRPC
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0
# Enough to outlast a full queue draining: the front refuses what its queue cannot hold (server/admission.py), and a
# burst of 40 texts at text_sentiment (32 admitted) failed with 3 retries (0.7 s at most) on a busy machine. Six wait
# up to 5.1 s in all, about half that on average.
DEFAULT_RETRIES = 6
READY_POLL_S = 0.2  # readiness is one cheap request; 5 a second reacts fast without loading the server
PROTOCOLS = ("http", "grpc")

T = TypeVar("T")


def backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """How a client reaches the server; checked once, when the client is made.

    Args:
        url: ``host:port`` of the HTTP (default port 8000) or gRPC (8001) endpoint; ``http://`` is accepted.
        protocol: ``"http"`` or ``"grpc"``.
        timeout_s: limit for each call.
        retries: extra attempts, with exponential backoff and jitter, when the server is unavailable
            (connection refused or reset, 503, gRPC UNAVAILABLE); a 4xx is never retried.
        admin_key: the server's TRITON_ADMIN_KEY, for repository, config, load/unload and shared memory.
    """

    url: str = "localhost:8000"
    protocol: str = "http"
    timeout_s: float = 30.0
    retries: int = DEFAULT_RETRIES
    admin_key: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol={self.protocol!r}; use 'http' or 'grpc'")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s={self.timeout_s!r}; use a positive number of seconds")
        if self.retries < 0:
            raise ValueError(f"retries={self.retries!r}; use 0 (no retry) or more")
        address = self.url.removeprefix("http://").removeprefix("https://").rstrip("/")
        if not address:
            raise ValueError("url is empty; use host:port, e.g. localhost:8000 (http) or localhost:8001 (grpc)")
        object.__setattr__(self, "url", address)  # frozen: normalised once, here

    def admin_headers(self) -> dict[str, str]:
        """The admin key under the header name the protocol needs; empty without a key."""
        if not self.admin_key:
            return {}
        return {GRPC_ADMIN_HEADER if self.protocol == "grpc" else ADMIN_HEADER: self.admin_key}


@dataclasses.dataclass(frozen=True)
class Call:
    """One tritonclient method call, for the client to make with its timeout and retries.

    ``as_json`` asks gRPC for a dict instead of a protobuf message (HTTP answers are dicts already).
    """

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    as_json: bool = False


@dataclasses.dataclass(frozen=True)
class Pause:
    """A wait between two steps."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class Done(Generic[T]):
    """The end of a plan, with its result."""

    value: T


Step: TypeAlias = Call | Pause
Plan: TypeAlias = Generator[Step, Any, T]


def advance(plan: Plan[T], answer: Any = None, error: ClientError | None = None) -> Step | Done[T]:
    """Gives ``plan`` the last step's answer (or throws in its error); returns the next step, or ``Done``."""
    try:
        return plan.throw(error) if error is not None else plan.send(answer)
    except StopIteration as stop:
        return Done(stop.value)


def _version(version: int | None) -> str:
    return "" if version is None else str(version)


class BaseClient:
    """State and plans shared by ``Client`` and ``AsyncClient``; see ``ClientOptions`` for the arguments.

    Subclasses name their tritonclient modules (``_MODULES``), open the connection (``_connect``) and run
    plans (``_run``).
    """

    _MODULES: ClassVar[dict[str, str]]  # protocol -> tritonclient module

    def __init__(self, url: str = "localhost:8000", *, protocol: str = "http", timeout_s: float = 30.0,
                 retries: int = DEFAULT_RETRIES, admin_key: str | None = None) -> None:
        self.options = ClientOptions(url=url, protocol=protocol, timeout_s=timeout_s, retries=retries,
                                     admin_key=admin_key)
        self._batch_limits: dict[str, int] = {}  # model -> max_batch_size, learnt from the server's refusal
        self._closed = False
        # Only the protocol in use is imported: HTTP pulls gevent, gRPC pulls grpcio.
        self._module: ModuleType = importlib.import_module(self._MODULES[self.options.protocol])
        self._client: Any = self._connect()

    def _connect(self) -> Any:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``host:port`` of the server."""
        return self.options.url

    @property
    def protocol(self) -> str:
        return self.options.protocol

    @property
    def timeout_s(self) -> float:
        return self.options.timeout_s

    @property
    def retries(self) -> int:
        return self.options.retries

    @property
    def admin_key(self) -> str | None:
        return self.options.admin_key

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"{type(self).__name__}({self.url!r}, protocol={self.protocol!r}{state})"

    # -- one call: what both retry loops need --------------------------------------------------

    def _prepare(self, call: Call) -> tuple[Any, dict[str, Any]]:
        """The bound tritonclient method and its keyword arguments; refuses a closed client."""
        if self._closed:
            raise ClientClosed(f"this {type(self).__name__} is closed; create a new one")
        kwargs = dict(call.kwargs)
        if self.protocol == "grpc":
            kwargs["client_timeout"] = self.timeout_s  # a deadline the server sees too
            if call.as_json:
                kwargs["as_json"] = True
        return getattr(self._client, call.method), kwargs

    def _retry_delay_s(self, exc: Exception, attempt: int) -> float:
        """The pause before attempt ``attempt + 1``; raises ``exc`` translated when it is not worth a retry."""
        error = translate(exc)
        if not isinstance(error, ServerUnavailable) or attempt >= self.retries:
            raise error from exc
        return backoff_s(attempt)

    def _admin_call(self, method: str, *args: Any, as_json: bool = False) -> Call:
        return Call(method, args, {"headers": self.options.admin_headers()}, as_json=as_json)

    # -- health and management -----------------------------------------------------------------

    def _plan_is_ready(self) -> Plan[bool]:
        try:
            return bool((yield Call("is_server_ready")))
        except ServerUnavailable:
            return False

    def _plan_wait_until_ready(self, timeout_s: float) -> Plan[float]:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r}; use a positive number of seconds")
        start = time.monotonic()
        while not (yield from self._plan_is_ready()):
            if time.monotonic() - start > timeout_s:
                raise ServerNotReady(f"{self.url} was not ready after {timeout_s:g} s; is it running (make "
                                        "serve)? A model that failed to load keeps it unready: see its log")
            yield Pause(READY_POLL_S)
        return time.monotonic() - start

    def _plan_server_metadata(self) -> Plan[dict[str, Any]]:
        return dict((yield Call("get_server_metadata", as_json=True)))

    def _plan_metadata(self, model: str, version: int | None) -> Plan[dict[str, Any]]:
        return dict((yield Call("get_model_metadata", (model,), {"model_version": _version(version)}, as_json=True)))

    def _plan_config(self, model: str) -> Plan[dict[str, Any]]:
        answer = yield self._admin_call("get_model_config", model, as_json=True)
        return dict(answer.get("config", answer))  # gRPC wraps it in {"config": ...}

    def _plan_models(self) -> Plan[list[dict[str, Any]]]:
        answer = yield self._admin_call("get_model_repository_index", as_json=True)
        entries = answer.get("models", []) if isinstance(answer, dict) else answer  # gRPC: {"models": [...]}
        return [{"name": e["name"], "version": e.get("version", ""), "state": e.get("state", "")} for e in entries]

    def _plan_statistics(self, model: str) -> Plan[list[dict[str, Any]]]:
        answer = yield Call("get_inference_statistics", kwargs={"model_name": model}, as_json=True)
        return list(answer.get("model_stats", []))

    def _plan_load(self, model: str) -> Plan[None]:
        yield self._admin_call("load_model", model)

    def _plan_unload(self, model: str) -> Plan[None]:
        yield self._admin_call("unload_model", model)

    # -- inference ------------------------------------------------------------------------------

    def _plan_infer(self, model: str, inputs: Mapping[str, npt.NDArray[Any]], outputs: Sequence[str] | None,
                    version: int | None) -> Plan[dict[str, npt.NDArray[Any]]]:
        rows = _tensors.batch_rows(inputs)
        while True:
            limit = self._batch_limits.get(model, rows)
            try:
                parts = []
                for chunk in _tensors.chunks(inputs, rows, limit):
                    parts.append((yield from self._plan_infer_once(model, chunk, outputs, version)))
                return _tensors.merge(parts)
            except InvalidInput as exc:
                if not self._learn_batch_limit(model, exc, limit):
                    raise

    def _learn_batch_limit(self, model: str, refusal: InvalidInput, limit: int) -> bool:
        """Remembers the model's max_batch_size from a refusal; True when the request is worth resending."""
        learnt = refusal.batch_limit
        if learnt is None or not 0 < learnt < limit:
            return False
        self._batch_limits[model] = learnt  # learnt once per client, then every call splits
        return True

    def _plan_infer_once(self, model: str, inputs: Mapping[str, npt.NDArray[Any]], outputs: Sequence[str] | None,
                         version: int | None, places: Mapping[str, _tensors.Placement] | None = None,
                         ) -> Plan[dict[str, npt.NDArray[Any]]]:
        tensors = _tensors.infer_inputs(self._module, inputs, places)
        requested = _tensors.requested_outputs(self._module, outputs)
        result = yield Call("infer", (model, tensors), {"model_version": _version(version), "outputs": requested})
        return _tensors.decode(result, outputs, self.protocol)

    def _plan_infer_with_shared_memory(self, model: str, inputs: Mapping[str, npt.NDArray[Any]],
                                       outputs: Sequence[str] | None, version: int | None,
                                       ) -> Plan[dict[str, npt.NDArray[Any]]]:
        _tensors.batch_rows(inputs)
        name = f"tritonkit-{uuid.uuid4().hex[:12]}"
        places = _tensors.placements(name, inputs)
        size = sum(nbytes for _, nbytes, _ in places.values())
        region = shm.create_shared_memory_region(name, f"/{name}", size)
        try:
            yield self._admin_call("register_system_shared_memory", name, f"/{name}", size)
            for key, array in inputs.items():
                shm.set_shared_memory_region(region, [array], offset=places[key][2])
            answer = yield from self._plan_infer_once(model, inputs, outputs, version, places)
        except Exception:  # the server's refusal or a local failure: undo the registration, then report it
            yield from self._plan_unregister(name)
            raise
        else:
            yield from self._plan_unregister(name)
            return answer
        finally:  # also when the plan is abandoned (an interrupt): the local region never outlives the call
            shm.destroy_shared_memory_region(region)

    def _plan_unregister(self, name: str) -> Plan[None]:
        with contextlib.suppress(ClientError):  # a restarted server lost the region already: nothing to undo
            yield self._admin_call("unregister_system_shared_memory", name)

    # -- typed helpers per public endpoint --------------------------------------------------------

    def _plan_embed(self, texts: Sequence[str] | str, model: str) -> Plan[npt.NDArray[Any]]:
        codec.check_endpoint(model, catalog.EMBEDDING_ENDPOINTS)
        out = yield from self._plan_infer(model, codec.texts_input(texts), ["EMBEDDING"], None)
        return out["EMBEDDING"]

    def _plan_sentiment(self, texts: Sequence[str] | str, model: str,
                        version: int | None) -> Plan[list[codec.Prediction]]:
        codec.check_endpoint(model, catalog.SENTIMENT_ENDPOINTS)
        out = yield from self._plan_infer(model, codec.texts_input(texts), codec.CLASS_OUTPUTS, version)
        return codec.predictions(out, catalog.SENTIMENT_LABELS)

    def _plan_classify_digit(self, images: codec.Image | Iterable[codec.Image]) -> Plan[list[codec.Prediction]]:
        out = yield from self._plan_infer("digit_classifier", codec.images_input(images), codec.CLASS_OUTPUTS, None)
        return codec.predictions(out, catalog.DIGIT_LABELS)

    def _plan_predict_diabetes(self, rows: npt.ArrayLike) -> Plan[npt.NDArray[Any]]:
        out = yield from self._plan_infer("diabetes_regressor", codec.rows_input(rows, 10), ["PREDICTION"], None)
        return out["PREDICTION"][:, 0]

    def _plan_recommend(self, users: Sequence[int] | int, k: int) -> Plan[list[list[codec.Recommendation]]]:
        inputs = codec.recommendation_input(users, k)
        out = yield from self._plan_infer(catalog.RECOMMENDER_ENDPOINT, inputs, codec.RECOMMENDATION_OUTPUTS, None)
        return codec.recommendations(out)

    def _plan_predict_cancer(self, rows: npt.ArrayLike) -> Plan[npt.NDArray[Any]]:
        out = yield from self._plan_infer("cancer_classifier", codec.rows_input(rows, 30), ["PROBABILITY"], None)
        return out["PROBABILITY"][:, 0]
