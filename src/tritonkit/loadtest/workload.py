"""What the users send: texts of realistic, varied lengths from the shipped dataset, digit images as PNG and
JPEG, tabular rows from the real datasets, and the recommender's MovieLens users. Built once per process."""

from __future__ import annotations

import functools
import io
import json
import random

import numpy as np

from tritonkit import catalog, paths


def _lines() -> list[str]:
    data = paths.data() / "sentiment"
    lines = [row.split("\t")[0] for row in (data / "reviews.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    return lines + (data / "unlabelled.txt").read_text(encoding="utf-8").splitlines()


def sentences() -> list[str]:
    """Every review and unlabelled sentence of the shipped dataset, stripped, blank lines dropped."""
    return [line.strip() for line in _lines() if line.strip()]


@functools.lru_cache(maxsize=1)
def texts() -> list[str]:
    """Every review and unlabelled sentence, plus longer texts joined from several (paragraph-like)."""
    lines = _lines()
    rng = random.Random(0)
    paragraphs = [" ".join(rng.sample(lines, rng.randint(3, 8))) for _ in range(200)]
    return [line for line in lines if line.strip()] + paragraphs


@functools.lru_cache(maxsize=1)
def digit_images() -> list[bytes]:
    """Held-out load_digits images drawn dark on light at several sizes, half PNG and half JPEG."""
    from PIL import Image
    from sklearn.datasets import load_digits

    images = []
    for index, image in enumerate(load_digits().images[catalog.DIGITS_TRAIN_IMAGES :]):
        picture = Image.fromarray((255 - image * 255 / 16).astype(np.uint8)).resize((32 + 8 * (index % 8),) * 2)
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, "PNG" if index % 2 else "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


@functools.lru_cache(maxsize=1)
def tabular_rows() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    return {
        "diabetes": load_diabetes().data.astype(np.float32),
        "cancer": load_breast_cancer().data.astype(np.float32),
    }


@functools.lru_cache(maxsize=1)
def movie_users() -> list[int]:
    """The MovieLens user ids the recommender knows (from the catalog export wrote beside its step)."""
    path = paths.ensembles() / catalog.RECOMMENDER_ENDPOINT / "1" / "movies.json"
    return [int(user) for user in json.loads(path.read_text(encoding="utf-8"))["users"]]
