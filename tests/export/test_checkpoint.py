"""`python -m tritonkit.export --model NAME --checkpoint FILE`: weights trained elsewhere for a built-in architecture,
exported through that model's own checks, its held-out metric computed from them, no training here."""

import json

import joblib
import numpy as np
import onnxruntime as ort
import pytest
import torch

from tritonkit.export.__main__ import main as export_main
from tritonkit.export.builtin import datasets, tabular
from tritonkit.export.builtin.checkpoint import sha256_of
from tritonkit.export.repository.card import CARD_NAME


def export(tmp_path, model, checkpoint) -> int:
    return export_main(["--model", model, "--checkpoint", str(checkpoint), "--repository", str(tmp_path / "repo"),
                        "--ensembles", str(tmp_path / "ensembles")])


def _outputs(tmp_path, model, feeds):
    session = ort.InferenceSession(str(tmp_path / "repo" / model / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _weights_trained_elsewhere():
    """The classifier's architecture with weights made here (seeded, not trained: any weights will do)."""
    split = datasets.breast_cancer()
    torch.manual_seed(7)
    module = tabular.cancer_module(split.x_train.mean(axis=0), split.x_train.std(axis=0)).eval()
    return split, module


def test_checkpoint_exports_the_given_weights_with_their_own_held_out_metric(tmp_path):
    split, module = _weights_trained_elsewhere()
    checkpoint = tmp_path / "cancer.pt"
    torch.save(module.state_dict(), checkpoint)
    assert export(tmp_path, "cancer_classifier", checkpoint) == 0
    (probability,) = _outputs(tmp_path, "cancer_classifier", {"FEATURES": split.x_test})
    with torch.no_grad():
        expected = module(torch.from_numpy(split.x_test)).numpy()
    np.testing.assert_allclose(probability, expected, atol=1e-5)
    record = json.loads((tmp_path / "repo" / "cancer_classifier" / "1" / "export.json").read_text())
    assert record["source_sha256"] == sha256_of(checkpoint)
    assert record["metric"] == pytest.approx(float(np.mean((expected[:, 0] > 0.5) == split.y_test)), abs=1e-6)
    assert (tmp_path / "repo" / "cancer_classifier" / "config.pbtxt").is_file()
    assert "`cancer_classifier` | 1 |" in (tmp_path / "repo" / CARD_NAME).read_text()


def test_checkpoint_of_the_wrong_shape_is_refused_naming_the_tensor_and_nothing_is_written(tmp_path, capsys):
    _, module = _weights_trained_elsewhere()
    state = module.state_dict()
    state["body.2.weight"] = torch.zeros(1, 8)  # the output layer of a 30-8-1 network, not 30-16-1
    checkpoint = tmp_path / "other.pt"
    torch.save(state, checkpoint)
    assert export(tmp_path, "cancer_classifier", checkpoint) == 1
    assert "checkpoint tensor 'body.2.weight' has shape [1, 8], the architecture needs [1, 16]" in \
        capsys.readouterr().err
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").rglob("*.onnx"))


def test_checkpoint_of_a_scikit_learn_pipeline_is_exported_for_the_regressor(tmp_path):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    split = datasets.diabetes()
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(split.x_train, split.y_train)
    checkpoint = tmp_path / "ridge.joblib"
    joblib.dump(pipeline, checkpoint)
    assert export(tmp_path, "diabetes_regressor", checkpoint) == 0
    (prediction,) = _outputs(tmp_path, "diabetes_regressor", {"FEATURES": split.x_test})
    np.testing.assert_allclose(prediction[:, 0], pipeline.predict(split.x_test), atol=1e-3)
    trained_here = tabular.train_diabetes_pipeline(split).predict(split.x_test)
    assert np.abs(prediction[:, 0] - trained_here).max() > 0.1  # the user's model, not the one trained here


def test_checkpoint_needs_exactly_one_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        export_main(["--checkpoint", str(tmp_path / "x.pt")])
    assert exited.value.code == 2  # argparse's usage error
    assert "--checkpoint needs exactly one --model NAME" in capsys.readouterr().err
