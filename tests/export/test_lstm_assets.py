"""The LSTM's own vocabulary file and tokenizer travel with the graph and cut text as training did."""

from tokenizers import Tokenizer

from tritonkit.export.builtin import lstm


def test_vocabulary_file_starts_with_pad_and_unk(exported_repository):
    vocabulary = (exported_repository / "lstm_sentiment_classifier" / "1" / "vocab.txt").read_text().splitlines()
    assert vocabulary[:2] == ["[PAD]", "[UNK]"] and len(vocabulary) == len(set(vocabulary)) > 1000


def test_shipped_tokenizer_matches_the_training_encoding(exported_repository):
    folder = exported_repository / "lstm_sentiment_classifier" / "1"
    vocabulary = (folder / "vocab.txt").read_text().splitlines()
    shipped = Tokenizer.from_file(str(folder / "tokenizer.json"))
    texts = ["Not bad at all, I'd buy it again!", "The zylophonic blender exploded"]  # the second has unseen words
    expected = lstm.encode(lstm.wordpiece_tokenizer(vocabulary), texts)
    for row, encoding in enumerate(shipped.encode_batch(texts)):
        assert encoding.ids == expected["input_ids"][row][: len(encoding.ids)].tolist()
    assert "[UNK]" not in shipped.encode(texts[1]).tokens  # unseen words split into known pieces
