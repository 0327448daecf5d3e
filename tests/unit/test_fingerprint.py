"""A change to one model's spec or trainer re-exports that model only (the per-model export fingerprint)."""

import dataclasses

import pytest

from tritonkit.export.builtin.registry import MODELS
from tritonkit.export.fingerprint import data_files, fingerprint, reached
from tritonkit.export.repository.config import ServingOptions


def _modules(name: str) -> set[str]:
    return reached(MODELS[name].build)[1]


def test_fingerprint_of_a_model_changes_when_a_spec_field_that_shapes_its_files_changes():
    spec = MODELS["cancer_classifier"]
    assert fingerprint(dataclasses.replace(spec, atol=2e-5)) != fingerprint(spec)
    assert fingerprint(spec, checkpoint_sha256="ab" * 32) != fingerprint(spec)


@pytest.mark.parametrize("change", [
    {"description": "another sentence"},
    {"serving": ServingOptions(max_batch_size=8, max_queue_size=8)},
    {"license": "another license"},
    {"tensorrt": False},
])
def test_fingerprint_of_a_model_stays_when_only_its_config_or_card_fields_change(change):
    spec = MODELS["cancer_classifier"]
    assert fingerprint(dataclasses.replace(spec, **change)) == fingerprint(spec)


def test_fingerprint_reaches_each_models_own_trainer_and_not_the_others():
    text_models = ("minilm_sentiment", "minilm_encoder", "lstm_sentiment_classifier")
    for name in text_models:
        assert "tritonkit.export.builtin.text" in _modules(name), name
    assert "tritonkit.export.builtin.lstm" in _modules("lstm_sentiment_classifier")
    assert "tritonkit.export.builtin.lstm" not in _modules("minilm_sentiment")
    assert "tritonkit.steps.imaging" in _modules("digit_resnet")  # trained as served
    for name in ("diabetes_regressor", "cancer_classifier", "movie_deepfm", "digit_resnet"):
        assert not {"tritonkit.export.builtin.text", "tritonkit.export.builtin.lstm"} & _modules(name), name
    for name in MODELS:  # a spec or builder edit in these files touches one model's text, never all
        assert not {"tritonkit.export.builtin.registry", "tritonkit.export.builtin.builders"} & _modules(name)


def test_fingerprint_takes_only_the_builders_own_source_from_builders_py():
    local, _ = reached(MODELS["diabetes_regressor"].build)
    assert "def diabetes(" in local and "def _r2(" in local
    assert "def minilm_sentiment(" not in local and "def movie_deepfm(" not in local


def test_fingerprint_covers_the_sentiment_data_for_the_text_models_only():
    sentiment = {path.name for path in data_files(_modules("minilm_sentiment"))}
    assert {"reviews.tsv", "challenge.tsv", "unlabelled.txt"} <= sentiment
    assert "README.md" not in sentiment  # prose, not training data
    assert data_files(_modules("digit_resnet")) == []


def test_fingerprint_covers_the_int8_code_only_for_models_with_an_int8_version(monkeypatch):
    from tritonkit.export import fingerprint as module

    with_int8, without = MODELS["minilm_sentiment"], MODELS["digit_resnet"]
    assert with_int8.int8_atol is not None and without.int8_atol is None
    before = {spec.name: fingerprint(spec) for spec in (with_int8, without)}
    original = module.module_file

    def edited(name):  # as if convert/quantize.py had other content
        path = original(name)
        return path.with_name("sklearn2onnx.py") if name == "tritonkit.export.convert.quantize" else path

    monkeypatch.setattr(module, "module_file", edited)
    assert fingerprint(without) == before[without.name]
    assert fingerprint(with_int8) != before[with_int8.name]
