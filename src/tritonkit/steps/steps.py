"""Triton Python-backend steps. Each ``ensembles/<step>/1/model.py`` is ``from ... import X as TritonPythonModel``.

``BatchStep`` owns the protocol: it reads every request of the batch, lets the subclass process the good
ones together, splits the results back per request, and answers a bad request with its own INVALID_ARG
error while the others succeed. Unexpected failures become INTERNAL errors for the requests concerned;
``execute`` never raises, so the stub stays healthy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from tritonkit import catalog
from tritonkit.steps import RequestError, imaging, movies, texts
from tritonkit.steps.heartbeat import Heartbeat


class BatchStep:
    """Base of every step: subclasses implement ``setup``, ``read`` and ``process``."""

    def initialize(self, args):
        self.config = json.loads(args["model_config"])
        self.model_dir = Path(args["model_repository"])
        self.version_dir = self.model_dir / args["model_version"]
        self.parameters = {key: value["string_value"] for key, value in self.config.get("parameters", {}).items()}
        self.heartbeat = Heartbeat()  # the watchdog's view of a stub stuck in execute
        self.setup()

    def setup(self) -> None:
        """Loads what the step needs (tokenizer, labels); runs once per instance."""

    def read(self, request):
        """One request -> the step's item; raises RequestError for bad input."""
        raise NotImplementedError

    def process(self, items: list) -> list[dict[str, np.ndarray]]:
        """All good items of the batch at once -> output tensors per item, in order."""
        raise NotImplementedError

    def execute(self, requests):
        with self.heartbeat.busy():
            return self._execute(requests)

    def _execute(self, requests):
        responses = [None] * len(requests)
        good = []
        for index, request in enumerate(requests):
            try:
                good.append((index, self.read(request)))
            except RequestError as exc:
                responses[index] = _error(str(exc), pb_utils.TritonError.INVALID_ARG)
            except Exception as exc:
                responses[index] = _error(f"{type(self).__name__} failed: {exc}", pb_utils.TritonError.INTERNAL)
        if good:
            self._answer(good, responses)
        return responses

    def _answer(self, good, responses) -> None:
        try:
            results = self.process([item for _, item in good])
        except Exception as exc:
            for index, _ in good:
                responses[index] = _error(f"{type(self).__name__} failed: {exc}", pb_utils.TritonError.INTERNAL)
            return
        for (index, _), outputs in zip(good, results, strict=False):
            tensors = [pb_utils.Tensor(name, array) for name, array in outputs.items()]
            responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)

    @staticmethod
    def rows(request, name: str) -> np.ndarray:
        """The request's input ``name`` as a [rows, ...] array (Triton already checked its dtype and shape)."""
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise RequestError(f"input {name!r} is missing")
        return tensor.as_numpy()


class TokenizerStep(BatchStep):
    """TEXT BYTES [1] -> input_ids, attention_mask (and token_type_ids, when the config declares that output)
    INT64 [bucket] with the tokenizer.json beside this model.

    Parameters: ``max_tokens`` (truncation, default ``catalog.MAX_TOKENS``), ``pad_id`` (default 0), ``allow_empty``
    (``true``: an empty text is tokenized, not refused). Each request is padded to the smallest length bucket of
    ``catalog.LENGTH_BUCKETS`` that holds its longest row, so the model step batches similar short texts; a longer
    request keeps its own length.
    """

    def setup(self):
        max_tokens = int(self.parameters.get("max_tokens", catalog.MAX_TOKENS))
        self.buckets = tuple(bucket for bucket in texts.LENGTH_BUCKETS if bucket <= max_tokens)
        self.tokenizer = texts.load_tokenizer(self.version_dir / "tokenizer.json", max_tokens)
        self.pad_id = int(self.parameters.get("pad_id", 0))
        self.allow_empty = self.parameters.get("allow_empty", "false") == "true"
        self.type_ids = any(output["name"] == "token_type_ids" for output in self.config["output"])

    def read(self, request):
        return [texts.decode_text(raw, row, allow_empty=self.allow_empty)
                for row, raw in enumerate(self.rows(request, "TEXT").reshape(-1))]

    def process(self, items):
        flat = [text for item in items for text in item]
        encodings = self.tokenizer.encode_batch(flat)
        results, start = [], 0
        for item in items:
            chunk = encodings[start : start + len(item)]
            results.append(texts.pad_to_bucket([encoding.ids for encoding in chunk], self.buckets, pad_id=self.pad_id,
                                               type_ids=[encoding.type_ids for encoding in chunk]
                                               if self.type_ids else None))
            start += len(item)
        return results


class DigitImageStep(BatchStep):
    """IMAGE BYTES [1] (PNG, JPEG, BMP, WebP...) -> pixel_values FP32 [1, 8, 8] as the digit model was trained."""

    def read(self, request):
        rows = self.rows(request, "IMAGE").reshape(-1)
        return np.stack([imaging.image_pixels(raw, row) for row, raw in enumerate(rows)])

    def process(self, items):
        return [{"pixel_values": pixels} for pixels in items]


class RecommenderStep(BatchStep):
    """USER_ID INT64 [1], K INT32 [1] -> MOVIE_IDS INT64 [K], TITLES BYTES [K], SCORES FP32 [K], POPULAR_FALLBACK
    BOOL [1]: the top K movies the user has not rated, scored by the model named in the ``scorer`` parameter.

    The candidates of every known user in the batch are scored together, in calls of at most the scorer's
    ``max_batch_size`` rows (Triton's BLS: a user's ~9,000 candidates take two or three). An unknown user gets
    the popular movies, flagged (movies.py).
    """

    def setup(self):
        self.catalog = movies.MovieCatalog(self.version_dir / "movies.json")
        self.scorer = self.parameters["scorer"]
        self.chunk = int(self.parameters["scorer_batch"])

    def read(self, request):
        return movies.read_request(self.rows(request, "USER_ID"), self.rows(request, "K"))

    def process(self, items):
        known = sorted({user for users, _ in items for user in users if user in self.catalog.user_index})
        candidates = {user: self.catalog.candidates(user) for user in known}
        scores = self._score(known, candidates)
        results = []
        for users, k in items:
            rows = [movies.top_k(candidates[user], scores[user], k) if user in candidates else None for user in users]
            answers = [self.catalog.answer(*row, False) if row else self.catalog.fallback(k) for row in rows]
            results.append({name: np.stack([answer[name] for answer in answers]) for name in answers[0]})
        return results

    def _score(self, users: list[int], candidates: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        if not users:
            return {}
        features = [self.catalog.features(user, candidates[user]) for user in users]
        joined = {name: np.concatenate([f[name] for f in features]) for name in features[0]}
        total = len(joined["user"])
        scores = np.concatenate([self._call({name: array[start : start + self.chunk] for name, array in joined.items()})
                                 for start in range(0, total, self.chunk)])
        bounds = np.cumsum([0, *(len(candidates[user]) for user in users)])
        return {user: scores[bounds[i] : bounds[i + 1]] for i, user in enumerate(users)}

    def _call(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        request = pb_utils.InferenceRequest(
            model_name=self.scorer, requested_output_names=["score"],
            inputs=[pb_utils.Tensor(name, array) for name, array in inputs.items()])
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{self.scorer}: {response.error().message()}")
        return pb_utils.get_output_tensor_by_name(response, "score").as_numpy()[:, 0]


def _error(message: str, code):
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
