"""Models added with `export add` served by a real tritonserver (the launcher, its front, explicit model control)
over HTTP and gRPC: they answer what their source frameworks answer, single rows sent at once are merged by the
batcher and still answer each alone, bad tensors get 4xx, and a model added while the server runs is loaded
without a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import joblib
import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
from conftest import ADMIN_KEY, infer_over, post_infer, serving
from tritonclient.utils import InferenceServerException

from tritonkit.export.__main__ import main as export_main

pytestmark = pytest.mark.integration
RNG = np.random.default_rng(3)
LONG_TEXT = " ".join(["a review that never ends"] * 200)  # far beyond the BERT's 64 tokens: truncated
CONCURRENT_ROWS = 24  # below the queue of 32 (one full batch) that the front and Triton admit at once


def _add(*args) -> None:
    assert export_main(["add", *map(str, args)]) == 0, f"export add {args} failed"


@pytest.fixture(scope="module")
def added(own_models, tmp_path_factory):
    repository = tmp_path_factory.mktemp("added") / "my_models"
    _add("iris", own_models.sklearn, "--repository", repository, "--sample", own_models.sklearn_sample)
    _add("two", own_models.torchscript, "--repository", repository, "--sample", own_models.torch_sample)
    _add("fixed", own_models.onnx_fixed, "--repository", repository)
    _add("reviews", own_models.bert, "--repository", repository, "--sample", own_models.text_sample)
    return repository


@pytest.fixture(scope="module")
def served(added, tmp_path_factory):
    """The user's repository alone, in explicit model control (what `tritonkit load` needs)."""
    with serving(tmp_path_factory.mktemp("added_server") / "server.log", [added], model_control="explicit") as server:
        yield server


def _torch_answers(own_models, features, scale):
    module = torch.jit.load(str(own_models.torchscript)).eval()
    with torch.no_grad():
        logits, total = module(torch.from_numpy(features), torch.from_numpy(scale))
    return logits.numpy(), total.numpy()


def test_added_models_answer_as_their_source_frameworks(served, protocol, own_models):
    rows = (np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]) + RNG.normal(scale=0.05, size=(2, 4))
            ).astype(np.float32)
    answer = infer_over(served.settings, protocol, "iris", {"features": rows}, ["label", "probabilities"])
    estimator = joblib.load(own_models.sklearn)
    assert [label.decode() for label in answer["label"][:, 0]] == estimator.predict(rows).tolist()
    np.testing.assert_allclose(answer["probabilities"], estimator.predict_proba(rows), atol=1e-5)

    features, scale = RNG.normal(size=(3, 4)).astype(np.float32), RNG.uniform(0.5, 2, (3, 1)).astype(np.float32)
    answer = infer_over(served.settings, protocol, "two", {"features": features, "scale": scale},
                        ["output_0", "output_1"])
    logits, total = _torch_answers(own_models, features, scale)
    np.testing.assert_allclose(answer["output_0"], logits, atol=1e-5)
    np.testing.assert_allclose(answer["output_1"], total, atol=1e-5)

    answer = infer_over(served.settings, protocol, "fixed", {"features": features[:1], "scale": scale[:1]},
                        ["logits", "total"])
    np.testing.assert_allclose(answer["logits"], logits[:1], atol=1e-5)


def test_an_added_text_classifier_answers_labels_and_softmax_as_transformers(served, protocol, own_models):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["A small, warm and very funny film.", "", LONG_TEXT]
    answer = infer_over(served.settings, protocol, "reviews", {"TEXT": np.array([[t.encode()] for t in texts],
                                                                                dtype=object)},
                        ["LABEL", "PROBABILITIES"])
    tokenizer = AutoTokenizer.from_pretrained(str(own_models.bert), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(own_models.bert), local_files_only=True).eval()
    for row, text in enumerate(texts):  # one text at a time, as the tokenizer step pads each request
        feed = tokenizer([text], truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            expected = torch.softmax(model(**feed).logits, dim=1).numpy()[0]
        np.testing.assert_allclose(answer["PROBABILITIES"][row], expected, atol=1e-4)
        assert answer["LABEL"][row, 0].decode() == model.config.id2label[int(expected.argmax())]


def test_single_rows_sent_at_once_are_batched_and_each_answers_as_alone(served, own_models):
    features = RNG.normal(size=(CONCURRENT_ROWS, 4)).astype(np.float32)
    scale = RNG.uniform(0.5, 2, (CONCURRENT_ROWS, 1)).astype(np.float32)
    client = grpcclient.InferenceServerClient(served.settings.grpc_url)
    before = _counts(client, "two")
    answers: dict[int, np.ndarray] = {}
    done = threading.Semaphore(0)

    def request(row: int):
        inputs = [grpcclient.InferInput("features", [1, 4], "FP32"), grpcclient.InferInput("scale", [1, 1], "FP32")]
        inputs[0].set_data_from_numpy(features[row : row + 1])
        inputs[1].set_data_from_numpy(scale[row : row + 1])

        def finished(result, error):
            answers[row] = error if error is not None else result.as_numpy("output_0")
            done.release()

        client.async_infer("two", inputs, finished)

    try:
        for row in range(CONCURRENT_ROWS):  # all in flight at once: they queue while an instance runs
            request(row)
        for _ in range(CONCURRENT_ROWS):
            assert done.acquire(timeout=60)
        after = _counts(client, "two")
    finally:
        client.close()
    logits, _ = _torch_answers(own_models, features, scale)
    for row in range(CONCURRENT_ROWS):
        assert not isinstance(answers[row], Exception), str(answers[row])
        np.testing.assert_allclose(answers[row][0], logits[row], atol=1e-5)
    inferences, executions = (after[i] - before[i] for i in range(2))
    assert inferences == CONCURRENT_ROWS
    assert executions < inferences, f"{inferences} rows in {executions} runs: the batcher merged none"


def _counts(client, model: str) -> tuple[int, int]:
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def _post(served, model: str, body: dict) -> tuple[int, str]:
    return post_infer(served.settings, model, body)


def _two(features_shape=(1, 4), datatype="FP32", names=("features", "scale")) -> dict:
    size = int(np.prod(features_shape))
    return {"inputs": [{"name": names[0], "shape": list(features_shape), "datatype": datatype, "data": [1] * size},
                       {"name": names[1], "shape": [features_shape[0], 1], "datatype": "FP32", "data": [1.0]}][:2]}


@pytest.mark.parametrize("body, message", [
    (_two(features_shape=(1, 3)), "unexpected shape for input 'features'"),
    (_two(datatype="INT32"), "expects 'FP32'"),
    (_two(names=("features", "volume")), "unexpected inference input 'volume'"),
    ({"inputs": []}, "expected 2 inputs but got 0"),
], ids=["shape", "dtype", "name", "missing"])
def test_bad_tensors_to_an_added_model_get_400_and_it_keeps_serving(served, body, message):
    status, error = _post(served, "two", body)
    assert status == 400, error
    assert message in error, error
    status, _ = _post(served, "two", _two())
    assert status == 200


def test_bad_tensors_to_an_added_model_over_grpc_get_invalid_argument(served):
    client = grpcclient.InferenceServerClient(served.settings.grpc_url)
    try:
        tensor = grpcclient.InferInput("features", [1, 3], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
        scale = grpcclient.InferInput("scale", [1, 1], "FP32")
        scale.set_data_from_numpy(np.ones((1, 1), np.float32))
        with pytest.raises(InferenceServerException, match="unexpected shape for input 'features'") as caught:
            client.infer("two", [tensor, scale])
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    finally:
        client.close()


def _cli(served, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonkit.client", "--url",
                           served.settings.http_url.removeprefix("http://"), "--admin-key", ADMIN_KEY, *args],
                          capture_output=True, text=True, timeout=120)


def test_a_model_added_to_a_running_server_is_loaded_without_restart_and_listed(served, added, own_models):
    _add("late", own_models.sklearn_regressor, "--repository", added, "--sample", own_models.sklearn_regressor_sample)
    status, _ = _post(served, "late", {"inputs": [{"name": "features", "shape": [1, 3], "datatype": "FP64",
                                                   "data": [5.0, 3.0, 1.5]}]})
    assert status >= 400  # not loaded yet: explicit control loads only what is asked for
    loaded = _cli(served, "load", "late")
    assert loaded.returncode == 0, loaded.stderr
    models = _cli(served, "models", "--json")
    assert models.returncode == 0, models.stderr
    listed = {(entry["name"], str(entry.get("version", ""))): entry.get("state") for entry in json.loads(models.stdout)}
    assert listed.get(("late", "1")) == "READY", listed
    status, body = _post(served, "late", {"inputs": [{"name": "features", "shape": [1, 3], "datatype": "FP64",
                                                      "data": [5.0, 3.0, 1.5]}]})
    assert status == 200, body
    expected = joblib.load(own_models.sklearn_regressor).predict(np.array([[5.0, 3.0, 1.5]]))
    np.testing.assert_allclose(json.loads(body)["outputs"][0]["data"], expected, atol=1e-9)
