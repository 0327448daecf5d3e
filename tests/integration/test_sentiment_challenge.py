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


@pytest.mark.parametrize("endpoint", catalog.SENTIMENT_ENDPOINTS)
def test_served_challenge_accuracy_is_the_model_cards(server, endpoint):
    challenge = text.sentiment_data().challenge
    labels: list[int] = []
    for start in range(0, len(challenge.texts), BATCH):
        chunk = np.array([[t.encode()] for t in challenge.texts[start : start + BATCH]], dtype=np.object_)
        out = infer_over(server.settings, "grpc", endpoint, {"TEXT": chunk}, ["LABEL"])
        labels += [catalog.SENTIMENT_LABELS.index(label.decode()) for label in out["LABEL"].reshape(-1)]
    correct = np.array(labels) == challenge.labels
    model, version = SERVED_VERSION[endpoint]
    record = read_record(paths.model_repository() / model / str(version) / RECORD_NAME)
    assert record is not None and record.breakdown, f"{model} v{version} has no challenge figures: run make export"
    categories = np.array(challenge.tags)
    # Same graph and tokenizer, but dynamic INT8 scales each batch by its own range: a near-tie may flip a row or
    # two (the card rounds to 6 decimals, hence 1e-6)
    for category in text.CHALLENGE_CATEGORIES:
        rows = categories == category
        assert abs(record.breakdown[f"challenge: {category}"] - correct[rows].mean()) <= 2 / rows.sum() + 1e-6, category
    assert abs(record.breakdown["challenge set: accuracy"] - correct.mean()) <= 2 / len(correct) + 1e-6
