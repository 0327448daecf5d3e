"""Issue 17's sentiment data (data/sentiment/README.md): size, domains, patterns, a fixed split with nothing
near-duplicated across it, a challenge set held out from all of it, and unlabelled lines that leak none of it."""

from __future__ import annotations

import collections
import csv
import re

import pytest

from tritonkit import catalog, paths
from tritonkit.export.builtin import text

FOLDER = paths.data() / "sentiment"
SPLITS = text.SPLITS
CATEGORIES = text.CHALLENGE_CATEGORIES
NEAR = 0.7  # cosine of character 3-5-gram TF-IDF vectors: above it two sentences are one reworded (README)
PATTERNS = ("plain", *CATEGORIES)
DOMAINS = ("films", "books", "restaurants", "hotels", "products", "software", "services")


def _rows(path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def _normal(sentence: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", sentence.lower()))


def near_duplicates(left: list[str], right: list[str], threshold: float = NEAR) -> list[tuple[str, str, float]]:
    """Pairs (one from each list) whose character n-gram TF-IDF cosine is at least ``threshold``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), preprocessor=_normal)
    vectorizer.fit(left + right)
    similarity = (vectorizer.transform(left) @ vectorizer.transform(right).T).tocoo()
    return [(left[i], right[j], float(value))
            for i, j, value in zip(similarity.row, similarity.col, similarity.data, strict=True) if value >= threshold]


@pytest.fixture(scope="module")
def reviews() -> list[dict[str, str]]:
    return _rows(FOLDER / "reviews.tsv")


@pytest.fixture(scope="module")
def challenge() -> list[dict[str, str]]:
    return _rows(FOLDER / "challenge.tsv")


def test_size_domains_and_patterns(reviews):
    assert len(reviews) >= 3000
    domains = collections.Counter(row["domain"] for row in reviews)
    assert all(domains[domain] >= 300 for domain in DOMAINS), domains
    patterns = collections.Counter(row["pattern"] for row in reviews)
    assert set(patterns) <= set(PATTERNS), patterns
    hard = sum(count for pattern, count in patterns.items() if pattern != "plain")
    assert hard / len(reviews) >= 0.5, patterns  # a deliberate share of the hard patterns
    assert all(patterns[pattern] >= 200 for pattern in PATTERNS), patterns


def test_labels_balanced_within_each_split_and_domain(reviews):
    for split in SPLITS:
        for domain in DOMAINS:
            labels = collections.Counter(row["label"] for row in reviews
                                         if row["split"] == split and row["domain"] == domain)
            assert set(labels) == set(catalog.SENTIMENT_LABELS), (split, domain, labels)
            assert min(labels.values()) / max(labels.values()) >= 0.6, (split, domain, labels)  # README


def test_batches_and_the_origin_split(reviews):
    batches = collections.Counter((row["batch"], row["split"]) for row in reviews)
    assert sum(count for (batch, _), count in batches.items() if batch == "origin") == 720, batches
    assert batches[("origin", "test")] == 180 and batches[("origin", "validation")] == 0, batches  # README
    assert {batch for batch, _ in batches} == {"origin", "broad", "counter"}, batches


def test_split_is_fixed_and_sized(reviews):
    splits = collections.Counter(row["split"] for row in reviews)
    assert set(splits) == set(SPLITS)
    assert splits["validation"] >= 300 and splits["test"] >= 500, splits


def test_no_sentence_twice(reviews, challenge):
    sentences = [_normal(row["text"]) for row in reviews + challenge]
    repeated = [sentence for sentence, count in collections.Counter(sentences).items() if count > 1]
    assert not repeated


def test_no_near_duplicates_across_the_split(reviews):
    by_split = {split: [row["text"] for row in reviews if row["split"] == split] for split in SPLITS}
    held_out = by_split["validation"] + by_split["test"]
    assert not near_duplicates(by_split["train"], held_out)
    assert not near_duplicates(by_split["validation"], by_split["test"])


def test_challenge_held_out_from_everything_trained_or_tuned_on(reviews, challenge):
    categories = collections.Counter(row["category"] for row in challenge)
    assert set(categories) == set(CATEGORIES)
    assert min(categories.values()) >= 30, categories
    sentences = [row["text"] for row in challenge]
    assert not near_duplicates([row["text"] for row in reviews], sentences)


def test_unlabelled_lines_are_not_held_out_sentences(reviews, challenge):
    unlabelled = [line for line in (FOLDER / "unlabelled.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    labelled = {_normal(row["text"]) for row in reviews + challenge}
    assert not [line for line in unlabelled if _normal(line) in labelled]
    held_out = [row["text"] for row in reviews if row["split"] != "train"] + [row["text"] for row in challenge]
    assert not near_duplicates(unlabelled, held_out)  # the LSTM distils on them


def test_the_plain_sentence_probe_is_not_in_the_data(reviews, challenge):
    """tests/export/test_sentiment_plain.py checks every text classifier on these: they must stay unseen."""
    probe = [line.split("\t")[0] for line in (paths.root() / "tests" / "assets" / "plain_sentiment.tsv")
             .read_text(encoding="utf-8").splitlines()[1:]]
    assert len(probe) == 12
    labelled = [row["text"] for row in reviews + challenge]
    assert not {_normal(sentence) for sentence in probe} & {_normal(sentence) for sentence in labelled}
    # n-gram cosine means nothing for "Terrible." against any row saying "terrible" twice: 4 words and up
    assert not near_duplicates([sentence for sentence in probe if len(sentence.split()) >= 4], labelled)


PRAISE = ("loved", "love", "adore", "wonderful", "great", "amazing", "fantastic", "brilliant", "perfect")


def test_sincere_praise_outnumbers_irony_for_every_praise_word(reviews):
    """Else the classifier learns that "loved" means sarcasm (README: the counter-examples batch)."""
    train = [row for row in reviews if row["split"] == "train"]
    for word in PRAISE:
        uses = collections.Counter((row["pattern"], row["label"]) for row in train
                                   if word in _normal(row["text"]).split())
        assert uses[("plain", "positive")] > uses[("irony", "negative")], (word, uses)


def test_near_duplicate_check_catches_a_reworded_sentence():
    original = "The battery on this phone easily lasts two full days, even with heavy use."
    reworded = "The battery on this phone easily lasts two whole days, even with heavy use!"
    unrelated = "The battery barely lasts half a day, even with light use."
    assert near_duplicates([original], [reworded])
    assert not near_duplicates([original], [unrelated])
