"""The exported text and image models answer over HTTP and gRPC, both versions where there are two."""

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from tritonkit import paths
from tritonkit.export.builtin import lstm, text, vision

pytestmark = pytest.mark.integration
TEXTS = text.sentiment_data().test_texts[:24]  # max_batch_size is 32


def _local(name: str, version: int, feed: dict) -> dict:
    session = ort.InferenceSession(str(paths.model_repository() / name / str(version) / "model.onnx"))
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))


@pytest.fixture(scope="module")
def sentence_transformer_embeddings():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(text.minilm_path()), device="cpu", local_files_only=True)
    return model.encode(TEXTS, convert_to_numpy=True)


@pytest.mark.parametrize(("version", "min_cosine"), [(1, 0.9999), (2, 0.95)])
def test_minilm_encoder_versions_match_sentence_transformers(infer_version, sentence_transformer_embeddings,
                                                             version, min_cosine):
    served = infer_version("minilm_encoder", version, text.tokenize(TEXTS), ["sentence_embedding"])
    cosine = np.sum(served["sentence_embedding"] * sentence_transformer_embeddings, axis=1)
    assert cosine.min() >= min_cosine


@pytest.mark.parametrize("version", [1, 2])
def test_minilm_sentiment_versions_match_their_graphs(infer_version, version):
    feed = text.tokenize(TEXTS)
    served = infer_version("minilm_sentiment", version, feed, ["logits"])["logits"]
    np.testing.assert_allclose(served, _local("minilm_sentiment", version, feed)["logits"], atol=1e-3)


def test_minilm_sentiment_answers_the_classification_extension(server):
    import tritonclient.http as httpclient

    feed = text.tokenize(["I loved every minute of it.", "It broke on the first day, avoid."])
    client = httpclient.InferenceServerClient(server.settings.http_url.removeprefix("http://"))
    try:
        inputs = []
        for name, array in feed.items():
            tensor = httpclient.InferInput(name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = client.infer("minilm_sentiment", inputs,
                              outputs=[httpclient.InferRequestedOutput("logits", class_count=1)])
        top = [entry.decode().split(":")[2] for entry in result.as_numpy("logits").reshape(-1)]
    finally:
        client.close()
    assert top == ["positive", "negative"]


def test_lstm_classifier_matches_its_graph_with_its_own_tokenizer(infer):
    folder = paths.model_repository() / "lstm_sentiment_classifier" / "1"
    vocabulary = (folder / "vocab.txt").read_text().splitlines()
    assert Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size() == len(vocabulary)
    feed = lstm.encode(lstm.wordpiece_tokenizer(vocabulary), TEXTS)
    served = infer("lstm_sentiment_classifier", feed, ["logits"])["logits"]
    np.testing.assert_allclose(served, _local("lstm_sentiment_classifier", 1, feed)["logits"], atol=1e-4)


def test_digit_resnet_classifies_held_out_digits(infer):
    split = vision.digits()
    images, labels = split.x_test[:64], split.y_test[:64]
    served = infer("digit_resnet", {"pixel_values": images}, ["logits"])["logits"]
    np.testing.assert_allclose(served, _local("digit_resnet", 1, {"pixel_values": images})["logits"], atol=1e-4)
    assert np.mean(np.argmax(served, axis=1) == labels) >= 0.93
