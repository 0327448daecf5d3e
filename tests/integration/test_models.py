"""The served models answer over HTTP and gRPC exactly as their in-process source models do."""

import numpy as np
import pytest
import torch

from tritonkit.export.builtin import datasets, tabular

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def diabetes():
    split = datasets.diabetes()
    return split, tabular.train_diabetes_pipeline(split)


@pytest.fixture(scope="module")
def cancer():
    split = datasets.breast_cancer()
    return split, tabular.train_cancer_classifier(split)


def test_diabetes_regressor_matches_sklearn_pipeline_on_held_out_rows(infer, diabetes):
    split, pipeline = diabetes
    served = infer("diabetes_regressor", {"FEATURES": split.x_test}, ["PREDICTION"])["PREDICTION"]
    assert served.shape == (len(split.x_test), 1) and served.dtype == np.float32
    np.testing.assert_allclose(served[:, 0], pipeline.predict(split.x_test), rtol=0, atol=1e-4)


def test_diabetes_regressor_answers_a_single_row(infer, diabetes):
    split, pipeline = diabetes
    served = infer("diabetes_regressor", {"FEATURES": split.x_test[:1]}, ["PREDICTION"])["PREDICTION"]
    np.testing.assert_allclose(served[0, 0], pipeline.predict(split.x_test[:1])[0], rtol=0, atol=1e-4)


def test_cancer_classifier_matches_pytorch_on_held_out_rows(infer, cancer):
    split, module = cancer
    chunks = np.array_split(split.x_test, 2)  # 100 rows; max_batch_size is 64
    served = np.concatenate([infer("cancer_classifier", {"FEATURES": c}, ["PROBABILITY"])["PROBABILITY"]
                             for c in chunks])
    with torch.no_grad():
        expected = module(torch.from_numpy(split.x_test)).numpy()
    assert served.shape == (len(split.x_test), 1)
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-5)
    assert np.mean((served[:, 0] > 0.5) == split.y_test) >= 0.95


def test_server_is_triton_2_51(server):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.settings.http_url.removeprefix("http://"))
    try:
        assert client.get_server_metadata()["version"] == "2.51.0"
        assert client.get_model_metadata("cancer_classifier")["platform"] == "onnxruntime_onnx"
    finally:
        client.close()
