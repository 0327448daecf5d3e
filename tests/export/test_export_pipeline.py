"""The export pipeline end to end on the small models: train, convert, verify, record, skip when up to date."""

import onnx
import pytest

from tritonkit.export.builtin.registry import MODELS
from tritonkit.export.fingerprint import fingerprint
from tritonkit.export.pipeline import export_model, up_to_date


def test_diabetes_export_is_verified_and_skipped_when_up_to_date(tmp_path):
    spec = MODELS["diabetes_regressor"]
    current = fingerprint(spec)
    (record,) = export_model(spec, tmp_path, current)
    assert record.parity_max_abs_error["PREDICTION"] <= 1e-4
    assert record.metric >= 0.60  # held-out R²
    onnx.checker.check_model(onnx.load(tmp_path / "diabetes_regressor" / "1" / "model.onnx"))
    assert up_to_date(spec, tmp_path, current) == [record]
    assert up_to_date(spec, tmp_path, "another-fingerprint") is None


@pytest.mark.slow
def test_cancer_export_reaches_accuracy_with_parity(tmp_path):
    (record,) = export_model(MODELS["cancer_classifier"], tmp_path, fingerprint(MODELS["cancer_classifier"]))
    assert record.parity_max_abs_error["PROBABILITY"] <= 1e-5
    assert record.metric >= 0.95  # held-out accuracy on the last 100 rows
