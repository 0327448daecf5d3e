"""Logits -> probabilities and labels (no Triton imports)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_labels(path: Path) -> list[str]:
    labels = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise ValueError(f"{path} holds no labels; write one class name a line")
    return labels


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_labels(probabilities: np.ndarray, labels: list[str]) -> np.ndarray:
    """The most probable label of each row as a BYTES column [rows, 1]."""
    return np.array([[labels[i].encode()] for i in np.argmax(probabilities, axis=-1)], dtype=np.object_)
