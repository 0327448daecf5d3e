"""Logits -> probabilities and labels (no Triton imports): what the classifiers' post-processing step did, now the
reference their in-graph heads are checked against at export (``export/convert/head.py``)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_labels(probabilities: np.ndarray, labels: list[str]) -> np.ndarray:
    """The most probable label of each row as a BYTES column [rows, 1]."""
    return np.array([[labels[i].encode()] for i in np.argmax(probabilities, axis=-1)], dtype=np.object_)
