"""Issue 17 on the served endpoints: the challenge set (held out from training, by category) sent to each
sentiment endpoint; its accuracy per category is the figure MODELS.md reports for the version it serves."""

import numpy as np
import pytest
from conftest import infer_over

from tritonkit import catalog, paths
from tritonkit.export.builtin import text
from tritonkit.export.repository.record import RECORD_NAME, read_record

BATCH = 32  # the endpoints' max_batch_size
SERVED_VERSION = {  # endpoint -> the classifier version its ensemble serves on CPU (ensembles/*/config.pbtxt)
    "text_sentiment": ("minilm_sentiment", 2),
    "text_sentiment_fp32": ("minilm_sentiment", 1),
    "lstm_sentiment": ("lstm_sentiment_classifier", 1),
}


def _served_labels(server, endpoint, texts) -> np.ndarray:
    labels: list[int] = []
    for start in range(0, len(texts), BATCH):
        chunk = np.array([[t.encode()] for t in texts[start : start + BATCH]], dtype=np.object_)
        out = infer_over(server.settings, "grpc", endpoint, {"TEXT": chunk}, ["LABEL"])
        labels += [catalog.SENTIMENT_LABELS.index(label.decode()) for label in out["LABEL"].reshape(-1)]
    return np.array(labels)


def _record(model, version):
    record = read_record(paths.model_repository() / model / str(version) / RECORD_NAME)
    assert record is not None and record.breakdown, f"{model} v{version} has no challenge figures: run make export"
    return record


@pytest.mark.parametrize("endpoint", [name for name in catalog.SENTIMENT_ENDPOINTS if SERVED_VERSION[name][1] == 1])
def test_served_challenge_accuracy_is_the_model_cards(server, endpoint):
    challenge = text.sentiment_data().challenge
    correct = _served_labels(server, endpoint, challenge.texts) == challenge.labels
    record = _record(*SERVED_VERSION[endpoint])
    categories = np.array(challenge.tags)
    for category in text.CHALLENGE_CATEGORIES:  # FP32: batching changes nothing beyond float noise
        rows = categories == category
        assert abs(record.breakdown[f"challenge: {category}"] - correct[rows].mean()) <= 1 / rows.sum() + 1e-6, category
    assert abs(record.breakdown["challenge set: accuracy"] - correct.mean()) <= 1 / len(correct) + 1e-6


def _int8_labels(chunks, tokenize) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(paths.model_repository() / "minilm_sentiment" / "2" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["logits"], tokenize(chunk))[0].argmax(axis=1) for chunk in chunks])


def test_served_int8_challenge_answers_are_the_int8_graphs_and_the_card_is_its_figure(server):
    """Dynamic INT8 scales activations over the whole batch, so which rows share a batch moves near-ties (2-5 of 70
    a category on an AVX2 CPU without VNNI; 0-2 with VNNI): the served endpoint is checked against the INT8 graph in
    the batches it serves (32 texts, padded to their length bucket by the tokenizer step), the card against the
    graph in the one batch the export scores."""
    from tritonkit.steps import texts as step_texts

    data = text.sentiment_data()
    challenge = data.challenge
    served = _served_labels(server, "text_sentiment", challenge.texts)
    tokenizer = step_texts.load_tokenizer(paths.ensembles() / "minilm_tokenizer" / "1" / "tokenizer.json",
                                          catalog.MAX_TOKENS)
    in_batches = _int8_labels([challenge.texts[i : i + BATCH] for i in range(0, len(challenge.texts), BATCH)],
                              lambda chunk: step_texts.pad_to_bucket([e.ids for e in tokenizer.encode_batch(chunk)]))
    assert int((served != in_batches).sum()) <= 1
    exported = _int8_labels([data.test.texts + challenge.texts], text.tokenize)[len(data.test.texts):]
    record = _record("minilm_sentiment", 2)
    categories = np.array(challenge.tags)
    for category in text.CHALLENGE_CATEGORIES:
        rows = categories == category
        accuracy = float((exported[rows] == challenge.labels[rows]).mean())
        assert abs(record.breakdown[f"challenge: {category}"] - accuracy) <= 1e-6, category
