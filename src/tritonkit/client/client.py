"""``Client``: typed calls to this repository's endpoints over HTTP or gRPC, with retries and clear errors."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence

import numpy as np

from tritonkit.client import codec
from tritonkit.client.errors import ClientClosed, ClientError, InvalidInput, ServerUnavailable, translate

ADMIN_HEADER = "triton-admin-key"
GRPC_ADMIN_HEADER = f"triton-grpc-protocol-{ADMIN_HEADER}"  # Triton prefixes the key on gRPC
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0
PROTOCOLS = ("http", "grpc")


def backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


class Client:
    """A connection to the server; use it as a context manager.

    Args:
        url: ``host:port`` of the HTTP (default port 8000) or gRPC (8001) endpoint; ``http://`` is accepted.
        protocol: ``"http"`` or ``"grpc"``.
        timeout_s: limit for each call.
        retries: extra attempts, with exponential backoff and jitter, when the server is unavailable
            (connection refused or reset, 503, gRPC UNAVAILABLE); a 4xx is never retried.
        admin_key: the server's TRITON_ADMIN_KEY, for repository, config, load/unload and shared memory.
    """

    def __init__(self, url: str = "localhost:8000", *, protocol: str = "http", timeout_s: float = 30.0,
                 retries: int = 3, admin_key: str | None = None):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol={protocol!r}; use 'http' or 'grpc'")
        if timeout_s <= 0 or retries < 0:
            raise ValueError("timeout_s must be > 0 and retries >= 0")
        self.url = url.removeprefix("http://").removeprefix("https://")
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.retries = retries
        self.admin_key = admin_key
        self._batch_limits: dict[str, int] = {}
        self._closed = False
        if protocol == "http":
            import tritonclient.http as module

            self._client = module.InferenceServerClient(self.url, connection_timeout=timeout_s,
                                                        network_timeout=timeout_s)
        else:
            import tritonclient.grpc as module

            # No channel_args: tritonclient's defaults lift gRPC's 4 MB message cap to 2 GB (Triton's own
            # limit) and keep its keepalive settings; passing any channel_args would drop both.
            self._client = module.InferenceServerClient(self.url)
        self._module = module

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _call(self, method: str, *args, **kwargs):
        """One tritonclient call with retries on ServerUnavailable and translated errors."""
        if self._closed:
            raise ClientClosed("this Client is closed; create a new one")
        if self.protocol == "grpc" and method not in ("is_server_live", "is_server_ready"):
            kwargs.setdefault("client_timeout", self.timeout_s)
        for attempt in range(self.retries + 1):
            try:
                return getattr(self._client, method)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - translated below, at this one boundary
                error = translate(exc)
                if not isinstance(error, ServerUnavailable) or attempt == self.retries:
                    raise error from exc
            time.sleep(backoff_s(attempt))
        raise AssertionError("unreachable")

    def _admin(self) -> dict[str, str]:
        if not self.admin_key:
            return {}
        return {GRPC_ADMIN_HEADER if self.protocol == "grpc" else ADMIN_HEADER: self.admin_key}

    def _json(self, value):
        if self.protocol == "grpc":
            from google.protobuf import json_format

            return json_format.MessageToDict(value, preserving_proto_field_name=True)
        return value

    # -- health and management ------------------------------------------------------------------

    def is_ready(self) -> bool:
        try:
            return bool(self._call("is_server_ready"))
        except ServerUnavailable:
            return False

    def wait_until_ready(self, timeout_s: float = 60.0) -> float:
        """Polls readiness until ``timeout_s``; returns the seconds waited or raises ServerUnavailable."""
        start = time.monotonic()
        while not self.is_ready():
            if time.monotonic() - start > timeout_s:
                raise ServerUnavailable(f"{self.url} was not ready after {timeout_s:g} s")
            time.sleep(0.2)
        return time.monotonic() - start

    def server_metadata(self) -> dict:
        return self._json(self._call("get_server_metadata"))

    def metadata(self, model: str, version: int | None = None) -> dict:
        return self._json(self._call("get_model_metadata", model, model_version=_version(version)))

    def config(self, model: str) -> dict:
        """The model's configuration (admin API)."""
        answer = self._json(self._call("get_model_config", model, headers=self._admin()))
        return answer.get("config", answer)

    def models(self) -> list[dict]:
        """Every model the repositories hold: name, version, state (admin API)."""
        answer = self._json(self._call("get_model_repository_index", headers=self._admin()))
        entries = answer.get("models", []) if isinstance(answer, dict) else answer
        return [{"name": e["name"], "version": e.get("version", ""), "state": e.get("state", "")} for e in entries]

    def statistics(self, model: str = "") -> list[dict]:
        return self._json(self._call("get_inference_statistics", model_name=model)).get("model_stats", [])

    def load(self, model: str) -> None:
        """Loads (or reloads) a model; needs MODEL_CONTROL=explicit and the admin key."""
        self._call("load_model", model, headers=self._admin())

    def unload(self, model: str) -> None:
        self._call("unload_model", model, headers=self._admin())

    # -- inference ------------------------------------------------------------------------------

    def infer(self, model: str, inputs: dict[str, np.ndarray], *, outputs: Sequence[str] | None = None,
              version: int | None = None) -> dict[str, np.ndarray]:
        """Runs ``model``; splits inputs longer than the model's max_batch_size into several requests.

        Returns:
            Every requested output (all of them when ``outputs`` is None) as numpy arrays.
        """
        rows = len(next(iter(inputs.values())))
        limit = self._batch_limits.get(model, rows) or rows
        try:
            return _merge([self._infer_once(model, chunk, outputs, version) for chunk in _chunks(inputs, limit)])
        except InvalidInput as exc:
            if exc.batch_limit is None or exc.batch_limit >= limit:
                raise
            self._batch_limits[model] = exc.batch_limit  # learnt once, then every call splits
            return self.infer(model, inputs, outputs=outputs, version=version)

    def _infer_once(self, model, inputs, outputs, version, shared_memory: Callable | None = None):
        tensors = []
        for name, array in inputs.items():
            tensor = self._module.InferInput(name, list(array.shape), _triton_dtype(array))
            if shared_memory is None:
                tensor.set_data_from_numpy(array)  # binary tensor data on HTTP too
            else:
                shared_memory(tensor, array)
            tensors.append(tensor)
        requested = [self._module.InferRequestedOutput(name) for name in outputs] if outputs else None
        result = self._call("infer", model, tensors, model_version=_version(version), outputs=requested)
        names = outputs or [output["name"] for output in _outputs_of(result, self.protocol)]
        return {name: result.as_numpy(name) for name in names}

    def infer_with_shared_memory(self, model: str, inputs: dict[str, np.ndarray], *,
                                 outputs: Sequence[str] | None = None, version: int | None = None):
        """Like ``infer``, but the inputs travel through a system shared-memory region (same host only).

        Worth it for large tensors: the request carries only the region's name. Needs the admin key
        (the shared-memory API is restricted) and a server on this machine.
        """
        from tritonclient.utils import shared_memory as shm

        name = f"tritonkit-{uuid.uuid4().hex[:12]}"
        size = sum(_nbytes(array) for array in inputs.values())
        region = shm.create_shared_memory_region(name, f"/{name}", size)
        offsets = {}
        try:
            self._call("register_system_shared_memory", name, f"/{name}", size, headers=self._admin())
            offset = 0
            for key, array in inputs.items():
                shm.set_shared_memory_region(region, [array], offset=offset)
                offsets[key] = offset
                offset += _nbytes(array)
            attach = lambda tensor, array: tensor.set_shared_memory(name, _nbytes(array), offsets[tensor.name()])  # noqa: E731
            return self._infer_once(model, inputs, outputs, version, shared_memory=attach)
        finally:
            try:
                self._call("unregister_system_shared_memory", name, headers=self._admin())
            except ClientError:
                pass  # the region is gone with the server; nothing to undo
            shm.destroy_shared_memory_region(region)

    # -- typed helpers per public endpoint --------------------------------------------------------

    def embed(self, texts: Sequence[str] | str) -> np.ndarray:
        """Sentence embeddings [n, 384], L2-normalized (``text_embedding``)."""
        return self.infer("text_embedding", codec.texts_input(texts), outputs=["EMBEDDING"])["EMBEDDING"]

    def sentiment(self, texts: Sequence[str] | str, *, model: str = "text_sentiment",
                  version: int | None = None) -> list[codec.Prediction]:
        """negative/positive with probabilities, from ``text_sentiment`` (MiniLM) or ``lstm_sentiment``."""
        if model not in codec.SENTIMENT_MODELS:
            raise ValueError(f"model={model!r}; use one of {', '.join(codec.SENTIMENT_MODELS)}")
        out = self.infer(model, codec.texts_input(texts), outputs=["LABEL", "PROBABILITIES"], version=version)
        return codec.predictions(out, codec.SENTIMENT_LABELS)

    def classify_digit(self, images) -> list[codec.Prediction]:
        """Digits from encoded images (bytes), image file paths or PIL images (``digit_classifier``)."""
        out = self.infer("digit_classifier", codec.images_input(images), outputs=["LABEL", "PROBABILITIES"])
        return codec.predictions(out, codec.DIGIT_LABELS)

    def predict_diabetes(self, rows) -> np.ndarray:
        """Disease progression for rows of sklearn's 10 scaled diabetes features."""
        out = self.infer("diabetes_regressor", codec.rows_input(rows, 10), outputs=["PREDICTION"])
        return out["PREDICTION"][:, 0]

    def predict_cancer(self, rows) -> np.ndarray:
        """Probability of sklearn's label 1 (benign) for rows of the 30 breast-cancer features."""
        return self.infer("cancer_classifier", codec.rows_input(rows, 30), outputs=["PROBABILITY"])["PROBABILITY"][:, 0]


def _version(version: int | None) -> str:
    return "" if version is None else str(version)


def _triton_dtype(array: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return "BYTES" if array.dtype == np.object_ else np_to_triton_dtype(array.dtype)


def _nbytes(array: np.ndarray) -> int:
    if array.dtype == np.object_:
        from tritonclient.utils import serialized_byte_size, serialize_byte_tensor

        return serialized_byte_size(serialize_byte_tensor(array))
    return array.nbytes


def _chunks(inputs: dict[str, np.ndarray], limit: int):
    rows = len(next(iter(inputs.values())))
    for start in range(0, rows, limit):
        yield {name: array[start : start + limit] for name, array in inputs.items()}


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _outputs_of(result, protocol: str) -> list[dict]:
    response = result.get_response()
    if protocol == "grpc":
        return [{"name": output.name} for output in response.outputs]
    return response["outputs"]
