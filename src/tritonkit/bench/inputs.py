"""The inputs every system gets, identical across systems: short (~10 words) and long (~100 words) texts
from the project's dataset, and held-out digits drawn as PNG files."""

from __future__ import annotations

import functools
import io
import random

import numpy as np

from tritonkit import catalog
from tritonkit.loadtest.workload import sentences as _sentences

POOL = 240  # distinct inputs per set; requests cycle through them
SHORT_WORDS = (8, 12)
LONG_WORDS = (90, 110)


@functools.lru_cache(maxsize=1)
def short_texts() -> tuple[str, ...]:
    """Single sentences of 8-12 words."""
    chosen = [line for line in _sentences() if SHORT_WORDS[0] <= len(line.split()) <= SHORT_WORDS[1]]
    random.Random(1).shuffle(chosen)
    return tuple(chosen[:POOL])


@functools.lru_cache(maxsize=1)
def long_texts() -> tuple[str, ...]:
    """Paragraphs of 90-110 words, sentences joined in a seeded random order."""
    sentences, rng, texts = _sentences(), random.Random(2), []
    while len(texts) < POOL:
        words, parts = 0, []
        while words < LONG_WORDS[0]:
            sentence = rng.choice(sentences)
            parts.append(sentence)
            words += len(sentence.split())
        if words <= LONG_WORDS[1]:
            texts.append(" ".join(parts))
    return tuple(texts)


TEXT_SETS = {"short": short_texts, "long": long_texts}


@functools.lru_cache(maxsize=1)
def digit_pngs() -> tuple[bytes, ...]:
    """Held-out load_digits images drawn dark on light as 64x64 PNG.

    Rows from catalog.DIGITS_TRAIN_IMAGES on: never trained on.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    pngs = []
    for image in load_digits().images[catalog.DIGITS_TRAIN_IMAGES : catalog.DIGITS_TRAIN_IMAGES + POOL]:
        buffer = io.BytesIO()
        Image.fromarray((255 - image * 255 / 16).astype(np.uint8)).resize((64, 64)).save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    return tuple(pngs)
