"""Request and answer shapes of the public endpoints, shared by the sync and asyncio clients.

Labels and endpoint names come from ``tritonkit.catalog``, where export defines them too.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from tritonkit import catalog

CLASS_OUTPUTS = ("LABEL", "PROBABILITIES")  # what text_sentiment, lstm_sentiment and digit_classifier answer


class SupportsSave(Protocol):
    """A PIL image, or anything else that writes itself to a file object in a named format."""

    def save(self, fp: Any, format: str | None = None) -> Any: ...


Image: TypeAlias = bytes | bytearray | str | os.PathLike[str] | SupportsSave


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One classified row: the top label and every label's probability."""

    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        """The probability of ``label``."""
        return self.probabilities[self.label]


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One movie recommended to a user: ``score`` is the model's P(liked), or with ``popular_fallback`` (an unknown
    user) the share of users who liked it."""

    movie_id: int
    title: str
    score: float
    popular_fallback: bool


def recommendation_input(users: Sequence[int] | int, k: int) -> dict[str, npt.NDArray[Any]]:
    """``USER_ID`` [n, 1] INT64 and ``K`` [n, 1] INT32 (one K for every user).

    Raises:
        ValueError: ``k`` is outside 1..catalog.MAX_RECOMMENDATIONS.
    """
    if not 1 <= k <= catalog.MAX_RECOMMENDATIONS:
        raise ValueError(f"k={k} must be within 1..{catalog.MAX_RECOMMENDATIONS}")
    ids = np.array([users] if isinstance(users, int) else list(users), dtype=np.int64).reshape(-1, 1)
    return {"USER_ID": ids, "K": np.full(ids.shape, k, dtype=np.int32)}


def recommendations(outputs: dict[str, npt.NDArray[Any]]) -> list[list[Recommendation]]:
    """Per user row, the recommended movies best first."""
    result = []
    for ids, titles, scores, popular in zip(outputs["MOVIE_IDS"], outputs["TITLES"], outputs["SCORES"],
                                            outputs["POPULAR_FALLBACK"].reshape(-1), strict=True):
        result.append([Recommendation(int(movie), title.decode() if isinstance(title, bytes) else str(title),
                                      float(score), bool(popular))
                       for movie, title, score in zip(ids, titles, scores, strict=True)])
    return result


RECOMMENDATION_OUTPUTS = ["MOVIE_IDS", "TITLES", "SCORES", "POPULAR_FALLBACK"]


def texts_input(texts: Sequence[str] | str) -> dict[str, npt.NDArray[Any]]:
    """``TEXT`` [n, 1] of UTF-8 bytes, as the text endpoints take it."""
    if isinstance(texts, str):
        texts = [texts]
    return {"TEXT": np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)}


def image_bytes(image: Image) -> bytes:
    """bytes stay as they are; a path is read; a PIL image is encoded as PNG."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    if hasattr(image, "save"):  # PIL.Image, without importing Pillow for the other cases
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise TypeError(f"an image must be bytes, a path or a PIL image, not {type(image).__name__}")


def images_input(images: Image | Iterable[Image]) -> dict[str, npt.NDArray[Any]]:
    """``IMAGE`` [n, 1] of encoded image bytes, from one image or several."""
    single = isinstance(images, (bytes, bytearray, str, os.PathLike)) or hasattr(images, "save")
    items = [cast(Image, images)] if single else list(cast(Iterable[Image], images))
    return {"IMAGE": np.array([[image_bytes(image)] for image in items], dtype=np.object_)}


def rows_input(rows: npt.ArrayLike, width: int) -> dict[str, npt.NDArray[Any]]:
    """``FEATURES`` [n, width] float32 from one row or several.

    Raises:
        ValueError: the rows do not have ``width`` features each.
    """
    array = np.asarray(rows, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"rows must have {width} features each, got shape {array.shape}")
    return {"FEATURES": array}


def check_endpoint(model: str, endpoints: Sequence[str]) -> None:
    """Raises ValueError, naming the choices, for a model that is not one of ``endpoints``."""
    if model not in endpoints:
        raise ValueError(f"model={model!r}; use one of {', '.join(endpoints)}")


def predictions(outputs: dict[str, npt.NDArray[Any]], labels: Sequence[str]) -> list[Prediction]:
    """``LABEL`` and ``PROBABILITIES`` rows as Predictions, the probabilities named by ``labels`` in order."""
    result = []
    for label, probabilities in zip(outputs["LABEL"].reshape(-1), outputs["PROBABILITIES"], strict=True):
        text = label.decode() if isinstance(label, bytes) else str(label)
        result.append(Prediction(text, {name: float(p) for name, p in zip(labels, probabilities, strict=True)}))
    return result
