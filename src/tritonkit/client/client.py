"""``Client``: typed calls to this repository's endpoints over HTTP or gRPC, with retries and clear errors.

Everything but the blocking I/O lives in ``_base.BaseClient``, shared with ``AsyncClient``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy.typing as npt

from tritonkit import catalog
from tritonkit.client import codec
from tritonkit.client._base import (
    ADMIN_HEADER,
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    GRPC_ADMIN_HEADER,
    PROTOCOLS,
    BaseClient,
    Call,
    ClientOptions,
    Done,
    Pause,
    Plan,
    Step,
    T,
    advance,
    backoff_s,
)
from tritonkit.client.errors import ClientError

__all__ = ["ADMIN_HEADER", "BACKOFF_BASE_S", "BACKOFF_CAP_S", "GRPC_ADMIN_HEADER", "PROTOCOLS", "Client",
           "ClientOptions", "backoff_s"]


class Client(BaseClient):
    """A blocking connection to the server; use it as a context manager.

    Args:
        url: ``host:port`` of the HTTP (default port 8000) or gRPC (8001) endpoint; ``http://`` is accepted.
        protocol: ``"http"`` or ``"grpc"``.
        timeout_s: limit for each call.
        retries: extra attempts, with exponential backoff and jitter, when the server is unavailable
            (connection refused or reset, 503, gRPC UNAVAILABLE); a 4xx is never retried.
        admin_key: the server's TRITON_ADMIN_KEY, for repository, config, load/unload and shared memory.

    Raises:
        ValueError: an option is out of range; the message names the allowed values.
    """

    _MODULES = {"http": "tritonclient.http", "grpc": "tritonclient.grpc"}

    def _connect(self) -> Any:
        if self.protocol == "http":
            return self._module.InferenceServerClient(self.url, connection_timeout=self.timeout_s,
                                                      network_timeout=self.timeout_s)
        # No channel_args: tritonclient's defaults lift gRPC's 4 MB message cap to 2 GB (Triton's own
        # limit) and keep its keepalive settings; passing any channel_args would drop both.
        return self._module.InferenceServerClient(self.url)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection; later calls raise ClientClosed. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._client.close()

    # -- carrying out a plan, blocking --------------------------------------------------------

    def _run(self, plan: Plan[T]) -> T:
        try:
            step = advance(plan)
            while not isinstance(step, Done):
                step = advance(plan, *self._perform(step))
            return step.value
        finally:
            plan.close()  # an interrupted plan still runs its cleanup (the shared-memory region)

    def _perform(self, step: Step) -> tuple[Any, ClientError | None]:
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            return None, None
        try:
            return self._send(step), None
        except ClientError as error:
            return None, error  # for the plan to handle or let rise

    def _send(self, call: Call) -> Any:
        """One tritonclient call, retried while the server is unavailable; errors come out translated."""
        method, kwargs = self._prepare(call)
        attempt = 0
        while True:
            try:
                return method(*call.args, **kwargs)
            except Exception as exc:  # _retry_delay_s translates it, and raises it unless it is worth a retry
                time.sleep(self._retry_delay_s(exc, attempt))
            attempt += 1

    # -- health and management ------------------------------------------------------------------

    def is_ready(self) -> bool:
        """True when the server is ready (every model loaded); False when it cannot be reached."""
        return self._run(self._plan_is_ready())

    def wait_until_ready(self, timeout_s: float = 60.0) -> float:
        """Polls readiness until ``timeout_s``; returns the seconds waited.

        Raises:
            ServerUnavailable: not ready within ``timeout_s``.
        """
        return self._run(self._plan_wait_until_ready(timeout_s))

    def server_metadata(self) -> dict[str, Any]:
        """The server's name, version and extensions."""
        return self._run(self._plan_server_metadata())

    def metadata(self, model: str, version: int | None = None) -> dict[str, Any]:
        """The model's inputs and outputs with their types and shapes."""
        return self._run(self._plan_metadata(model, version))

    def config(self, model: str) -> dict[str, Any]:
        """The model's configuration (admin API)."""
        return self._run(self._plan_config(model))

    def models(self) -> list[dict[str, Any]]:
        """Every model the repositories hold: name, version, state (admin API)."""
        return self._run(self._plan_models())

    def statistics(self, model: str = "") -> list[dict[str, Any]]:
        """Triton's inference statistics per model (every model when ``model`` is empty)."""
        return self._run(self._plan_statistics(model))

    def load(self, model: str) -> None:
        """Loads (or reloads) a model; needs MODEL_CONTROL=explicit and the admin key."""
        self._run(self._plan_load(model))

    def unload(self, model: str) -> None:
        """Unloads a model; needs MODEL_CONTROL=explicit and the admin key."""
        self._run(self._plan_unload(model))

    # -- inference ------------------------------------------------------------------------------

    def infer(self, model: str, inputs: dict[str, npt.NDArray[Any]], *, outputs: Sequence[str] | None = None,
              version: int | None = None) -> dict[str, npt.NDArray[Any]]:
        """Runs ``model``; splits inputs longer than the model's max_batch_size into several requests.

        Args:
            model: the model's name.
            inputs: input name -> array with the batch on the first axis (bytes as ``dtype=object``).
            outputs: the outputs to return; None for all of them.
            version: the model version; None for the server's version policy.

        Returns:
            Every requested output as a numpy array.
        """
        return self._run(self._plan_infer(model, inputs, outputs, version))

    def infer_with_shared_memory(self, model: str, inputs: dict[str, npt.NDArray[Any]], *,
                                 outputs: Sequence[str] | None = None,
                                 version: int | None = None) -> dict[str, npt.NDArray[Any]]:
        """Like ``infer``, but the inputs travel through a system shared-memory region (same host only).

        Worth it for large tensors: the request carries only the region's name. Needs the admin key
        (the shared-memory API is restricted) and a server on this machine; no batch splitting.
        """
        return self._run(self._plan_infer_with_shared_memory(model, inputs, outputs, version))

    # -- typed helpers per public endpoint --------------------------------------------------------

    def embed(self, texts: Sequence[str] | str, *,
              model: str = catalog.EMBEDDING_ENDPOINTS[0]) -> npt.NDArray[Any]:
        """Sentence embeddings [n, 384], L2-normalized, from ``text_embedding`` (INT8 on CPU) or
        ``text_embedding_fp32``."""
        return self._run(self._plan_embed(texts, model))

    def sentiment(self, texts: Sequence[str] | str, *, model: str = catalog.SENTIMENT_ENDPOINTS[0],
                  version: int | None = None) -> list[codec.Prediction]:
        """negative/positive with probabilities, from ``text_sentiment`` (MiniLM, INT8 on CPU),
        ``text_sentiment_fp32`` or ``lstm_sentiment``."""
        return self._run(self._plan_sentiment(texts, model, version))

    def classify_digit(self, images: codec.Image | Iterable[codec.Image]) -> list[codec.Prediction]:
        """Digits from encoded images (bytes), image file paths or PIL images (``digit_classifier``)."""
        return self._run(self._plan_classify_digit(images))

    def predict_diabetes(self, rows: npt.ArrayLike) -> npt.NDArray[Any]:
        """Disease progression for rows of sklearn's 10 scaled diabetes features."""
        return self._run(self._plan_predict_diabetes(rows))

    def recommend(self, users: Sequence[int] | int, k: int = 10) -> list[list[codec.Recommendation]]:
        """The top ``k`` movies each MovieLens user has not rated, best first (``movie_recommendations``); an
        unknown user gets the popular movies, each with ``popular_fallback`` set."""
        return self._run(self._plan_recommend(users, k))

    def predict_cancer(self, rows: npt.ArrayLike) -> npt.NDArray[Any]:
        """Probability of sklearn's label 1 (benign) for rows of the 30 breast-cancer features."""
        return self._run(self._plan_predict_cancer(rows))
