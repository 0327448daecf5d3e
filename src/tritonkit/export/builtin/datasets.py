"""The real, offline datasets the tabular models train on, with fixed held-out splits."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    """Train and held-out rows of one dataset (features as float32, as served)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


DIABETES_TRAIN_ROWS = 400  # of 442; the last 42 rows are held out
CANCER_TRAIN_ROWS = 469  # of 569; the last 100 rows are held out


def diabetes() -> Split:
    """``load_diabetes()`` with its default scaled features; target is disease progression."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return _split(x, y, DIABETES_TRAIN_ROWS)


def breast_cancer() -> Split:
    """``load_breast_cancer()``; label 1 is benign in sklearn's coding."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return _split(x, y, CANCER_TRAIN_ROWS)


def _split(x: np.ndarray, y: np.ndarray, train_rows: int) -> Split:
    x = x.astype(np.float32)
    return Split(x[:train_rows], y[:train_rows], x[train_rows:], y[train_rows:])
