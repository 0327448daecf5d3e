"""Plain, obvious sentences (tests/assets/plain_sentiment.tsv; none in data/sentiment, nor near one) read right by
every exported text classifier version: training on sarcasm once taught MiniLM to read "I loved this film." as
negative (data/sentiment/README.md: the counter-examples batch)."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tritonkit.export.builtin import lstm, text

PLAIN = dict(line.split("\t") for line in (Path(__file__).parents[1] / "assets" / "plain_sentiment.tsv")
             .read_text(encoding="utf-8").splitlines()[1:])
VERSIONS = (("minilm_sentiment", 1), ("minilm_sentiment", 2), ("lstm_sentiment_classifier", 1))


@pytest.mark.parametrize(("name", "version"), VERSIONS)
def test_plain_sentences_are_read_right(name, version, exported_repository):
    folder = exported_repository / name / str(version)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    sentences = list(PLAIN)
    if name.startswith("lstm"):
        from tokenizers import Tokenizer

        feed = lstm.encode(Tokenizer.from_file(str(folder / "tokenizer.json")), sentences)
    else:
        feed = text.tokenize(sentences)
    (logits,) = session.run(["logits"], feed)
    read = dict(zip(sentences, (text.LABELS[i] for i in np.argmax(logits, axis=1)), strict=True))
    assert read == PLAIN, {sentence: label for sentence, label in read.items() if label != PLAIN[sentence]}
