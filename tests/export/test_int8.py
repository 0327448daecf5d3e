"""The INT8 versions `make export` wrote meet issue 14's bar for serving INT8 (the export refuses them otherwise)."""

from __future__ import annotations

import json

from tritonkit.export.repository.record import RECORD_NAME


def _record(repository, model: str, version: int) -> dict:
    return json.loads((repository / model / str(version) / RECORD_NAME).read_text())


def test_the_int8_encoder_keeps_min_cosine_0995_to_sentence_transformers(exported_repository):
    int8 = _record(exported_repository, "minilm_encoder", 2)
    assert int8["metric"] >= 0.995, int8
    assert "SmoothQuant" in int8["format"]


def test_the_int8_classifier_is_within_a_point_of_fp32_accuracy(exported_repository):
    fp32, int8 = (_record(exported_repository, "minilm_sentiment", version)["metric"] for version in (1, 2))
    assert fp32 - int8 <= 0.01, (fp32, int8)
