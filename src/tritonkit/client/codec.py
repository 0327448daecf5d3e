"""Request and answer shapes of the public endpoints, shared by the sync and asyncio clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

SENTIMENT_LABELS = ("negative", "positive")  # PROBABILITIES order of text_sentiment and lstm_sentiment
DIGIT_LABELS = tuple(str(digit) for digit in range(10))
SENTIMENT_MODELS = ("text_sentiment", "lstm_sentiment")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One classified row: the top label and every label's probability."""

    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


def texts_input(texts: Sequence[str] | str) -> dict[str, np.ndarray]:
    if isinstance(texts, str):
        texts = [texts]
    return {"TEXT": np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)}


def image_bytes(image) -> bytes:
    """bytes stay as they are; a path is read; a PIL image is encoded as PNG."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    if hasattr(image, "save"):  # PIL.Image, without importing Pillow for the other cases
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise TypeError(f"an image must be bytes, a path or a PIL image, not {type(image).__name__}")


def images_input(images: Iterable) -> dict[str, np.ndarray]:
    if isinstance(images, (bytes, bytearray, str, Path)) or hasattr(images, "save"):
        images = [images]
    return {"IMAGE": np.array([[image_bytes(image)] for image in images], dtype=np.object_)}


def rows_input(rows, width: int) -> dict[str, np.ndarray]:
    array = np.asarray(rows, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"rows must have {width} features each, got shape {array.shape}")
    return {"FEATURES": array}


def predictions(outputs: dict[str, np.ndarray], labels: Sequence[str]) -> list[Prediction]:
    result = []
    for label, probabilities in zip(outputs["LABEL"].reshape(-1), outputs["PROBABILITIES"]):
        text = label.decode() if isinstance(label, bytes) else str(label)
        result.append(Prediction(text, {name: float(p) for name, p in zip(labels, probabilities)}))
    return result
