"""Client pieces that need no server: backoff, error translation, request encoding, CLI tables."""

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

import tritonkit.client.client as client_module
from tritonkit.server import settings as server_settings
from tritonkit.client import codec
from tritonkit.client.cli import table
from tritonkit.client.errors import (
    ClientError,
    Forbidden,
    InvalidInput,
    ModelNotFound,
    ServerUnavailable,
    Timeout,
    translate,
)


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempt in range(10):
        bound = min(client_module.BACKOFF_CAP_S, client_module.BACKOFF_BASE_S * 2**attempt)
        samples = [client_module.backoff_s(attempt) for _ in range(200)]
        assert 0.0 <= min(samples) and max(samples) <= bound
        assert len(set(samples)) > 100  # jittered, not a fixed delay


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("400", "inference request batch-size must be <= 64 for 'x'", InvalidInput),
        ("StatusCode.INVALID_ARGUMENT", "in ensemble 'text_sentiment', TEXT row 0 is empty", InvalidInput),
        ("400", "Request for unknown model: 'nope' is not found", ModelNotFound),
        ("403", "This API is restricted, expecting header 'triton-admin-key'", Forbidden),
        ("StatusCode.UNAVAILABLE", "This protocol is restricted, expecting header 'x'", Forbidden),
        ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", ServerUnavailable),
        ("503", "Server not ready", ServerUnavailable),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", Timeout),
        ("500", "failed to parse the request JSON buffer", ClientError),
    ],
)
def test_server_errors_translate_to_the_client_tree(status, message, expected):
    error = translate(InferenceServerException(msg=message, status=status))
    assert type(error) is expected and error.message.startswith(message)


def test_network_errors_translate_to_unavailable_and_timeout():
    assert isinstance(translate(ConnectionRefusedError(111, "Connection refused")), ServerUnavailable)
    assert isinstance(translate(TimeoutError("timed out")), Timeout)


def test_invalid_input_knows_the_batch_limit():
    assert InvalidInput("inference request batch-size must be <= 32 for 'm'").batch_limit == 32
    assert InvalidInput("TEXT row 0 is empty").batch_limit is None


def test_admin_headers_agree_with_the_server():
    assert client_module.ADMIN_HEADER == server_settings.ADMIN_HEADER
    assert client_module.GRPC_ADMIN_HEADER == server_settings.GRPC_ADMIN_HEADER


def test_codec_encodes_texts_and_checks_rows():
    assert codec.texts_input("café")["TEXT"].tolist() == [["café".encode()]]
    assert codec.rows_input([0.0] * 10, 10)["FEATURES"].shape == (1, 10)
    with pytest.raises(ValueError, match="rows must have 30 features each, got shape \\(1, 10\\)"):
        codec.rows_input([0.0] * 10, 30)
    with pytest.raises(TypeError, match="an image must be bytes, a path or a PIL image, not int"):
        codec.images_input([3])


def test_predictions_pair_labels_with_probabilities():
    outputs = {"LABEL": np.array([[b"positive"]], dtype=object), "PROBABILITIES": np.array([[0.25, 0.75]])}
    (prediction,) = codec.predictions(outputs, codec.SENTIMENT_LABELS)
    assert prediction.label == "positive" and prediction.confidence == 0.75


def test_client_refuses_bad_options():
    with pytest.raises(ValueError, match="protocol='tcp'"):
        client_module.Client("localhost:8000", protocol="tcp")


def test_table_aligns_columns_and_shortens_long_cells():
    text = table([{"name": "m", "value": 0.5, "vector": [0.1, 0.2, 0.3, 0.4, 0.5]}], ["name", "value", "vector"])
    header, rule, row = text.splitlines()
    assert header.split() == ["name", "value", "vector"] and set(rule.replace(" ", "")) == {"-"}
    assert "0.5000" in row and row.endswith("...]")
