"""The held-out figures each export wrote (export.json, MODELS.md) reach the project's targets."""

import json

import pytest

from tritonkit.export.card import CARD_NAME
from tritonkit.export.registry import MODELS

TARGETS = {  # model -> minimum held-out metric (issue: export pipeline for every origin system)
    "diabetes_regressor": 0.60,  # R²
    "cancer_classifier": 0.95,  # accuracy
    "minilm_sentiment": 0.88,
    "lstm_sentiment_classifier": 0.75,
    "digit_resnet": 0.956,  # issue 16: within a point of the 0.9663 before training as served
    "minilm_encoder": 0.9999,  # min cosine to sentence-transformers (FP32)
    "movie_deepfm": 0.75,  # AUC (issue 15)
}
INT8_MAX_ACCURACY_DROP = 0.01  # one point
INT8_MIN_COSINE = 0.95
INT8_MAX_SIZE_RATIO = 0.35  # INT8 weights: about a quarter of FP32


def _record(repository, name, version):
    return json.loads((repository / name / str(version) / "export.json").read_text())


def test_every_registered_model_has_a_target():
    assert sorted(TARGETS) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fp32_held_out_metric_reaches_target(name, exported_repository):
    record = _record(exported_repository, name, 1)
    assert record["metric"] >= TARGETS[name], f"{name}: {record['metric_name']} {record['metric']}"


@pytest.mark.parametrize("name", sorted(n for n, spec in MODELS.items() if len(spec.versions) > 1))
def test_int8_version_stays_close_to_fp32_and_is_smaller(name, exported_repository):
    fp32, int8 = _record(exported_repository, name, 1), _record(exported_repository, name, 2)
    if fp32["metric_name"] == "accuracy":
        assert fp32["metric"] - int8["metric"] <= INT8_MAX_ACCURACY_DROP
    else:
        assert int8["metric"] >= INT8_MIN_COSINE
    assert int8["size_bytes"] <= INT8_MAX_SIZE_RATIO * fp32["size_bytes"]
    assert "INT8" in int8["format"]


def test_model_card_has_a_row_per_version_with_its_metric(exported_repository):
    card = (exported_repository / CARD_NAME).read_text()
    for name, spec in MODELS.items():
        for version in spec.versions:
            record = _record(exported_repository, name, version)
            assert f"| `{name}` | {version} | {spec.source} | {record['format']} |" in card
            assert f"{record['metric_name']} {record['metric']:.4f}" in card


def test_the_recommenders_ranking_beats_popularity_and_is_on_the_card(exported_repository):
    details = _record(exported_repository, "movie_deepfm", 1)["details"]
    assert details["HR@10"] > details["popularity HR@10"], details
    assert details["NDCG@10"] > details["popularity NDCG@10"], details
    assert details["users ranked"] >= 600  # users with a liked held-out movie, of 671
    card = (exported_repository / CARD_NAME).read_text()
    assert f"HR@10 {details['HR@10']:.4f}, popularity HR@10 {details['popularity HR@10']:.4f}" in card


def test_the_digit_render_suite_meets_issue_16s_bar_and_is_tabled_on_the_card(exported_repository):
    from tritonkit.export import renders

    record = _record(exported_repository, "digit_resnet", 1)
    breakdown = record["breakdown"]
    assert list(breakdown) == ["all conditions", *(condition.name for condition in renders.SUITE)]
    assert breakdown["all conditions"] >= 0.95, breakdown
    worst = min(breakdown, key=breakdown.get)
    assert breakdown[worst] >= 0.92, f"{worst}: {breakdown[worst]}"
    card = (exported_repository / CARD_NAME).read_text()
    assert f"## {record['breakdown_title']}" in card
    for name, value in breakdown.items():
        assert f"| {name} | {value:.3f} |" in card
