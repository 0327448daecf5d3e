"""Is the challenge set hard for MiniLM because of its style, or because of the model? A diagnostic, never shipped.

    .venv/bin/python scripts/challenge_folds.py --seed 0     # both folds, about 11 minutes on 2 cores
    .venv/bin/python scripts/challenge_folds.py --seed 1
    .venv/bin/python scripts/challenge_folds.py --folds 4    # each model sees three quarters: about 24 minutes

The challenge set (data/sentiment/challenge.tsv) is split in two halves (or --folds parts) within each category
and label, by the SHA-1 of each text. export/builtin/text.py's fine-tuning runs unchanged once a part: on the train
split
plus the other parts, scored on the part it did not see; each sentence is scored only by the model that never saw
it. If the challenge set's phrasing is what the train split lacks, seeing the rest of it lifts the held-out part
a lot; if MiniLM-L6 cannot represent these constructions, it barely moves. More folds show whether more
sentences of the challenge's kind keep paying (a learning curve). The served model (make export, seed 0, no
challenge rows) scores the same parts alongside. Prints and appends to --out one JSON line a fold and one for all
of them together.
data/sentiment/README.md has the figures. The models it trains are thrown away: the challenge set stays held out
of everything make export builds.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
from pseudo_labels import emit, teacher_probabilities

from tritonkit.export.builtin import text


def halves(challenge: text.Labelled, folds: int = 2) -> np.ndarray:
    """The fold (0 to folds - 1) of each challenge row: by SHA-1 order within its category and label, in turn."""
    side = np.zeros(len(challenge.texts), dtype=np.int64)
    groups: dict[tuple[str, int], list[int]] = {}
    for index, (tag, label) in enumerate(zip(challenge.tags, challenge.labels, strict=True)):
        groups.setdefault((tag, int(label)), []).append(index)
    for members in groups.values():
        ranked = sorted(members, key=lambda i: hashlib.sha1(challenge.texts[i].encode()).hexdigest())
        side[ranked] = np.arange(len(ranked)) % folds
    return side


def by_category(correct: np.ndarray, tags: list[str]) -> dict[str, float]:
    tags_array = np.array(tags)
    return {"all": round(float(correct.mean()), 4),
            **{category: round(float(correct[tags_array == category].mean()), 4)
               for category in text.CHALLENGE_CATEGORIES}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=text.SEED)
    parser.add_argument("--folds", type=int, default=2, help="parts of the challenge set; each model sees all "
                        "but one (default: 2, halves)")
    parser.add_argument("--out", type=Path, default=Path("challenge_folds.jsonl"))
    args = parser.parse_args(argv)
    data = text.sentiment_data()
    if args.folds < 2:
        parser.error(f"--folds {args.folds}: at least 2, so that every sentence is scored by a model that never saw it")
    side = halves(data.challenge, args.folds)
    served = teacher_probabilities(data.challenge.texts).argmax(axis=1) == data.challenge.labels
    fine_tuned = np.zeros(len(side), dtype=bool)
    text.SEED = args.seed
    for held_out in range(args.folds):
        shown = np.flatnonzero(side != held_out)
        train = text.Labelled(data.train.texts + [data.challenge.texts[i] for i in shown],
                              np.concatenate([data.train.labels, data.challenge.labels[shown]]),
                              data.train.tags + ["challenge"] * len(shown))
        augmented = dataclasses.replace(data, train=train)
        text.sentiment_data = lambda augmented=augmented: augmented  # fine_tune reads the data through it
        start = time.time()
        model, curve = text.fine_tune.__wrapped__()  # uncached: a fresh run
        held = np.flatnonzero(side == held_out)
        logits = text.run_model(model, data.test.texts + [data.challenge.texts[i] for i in held])
        rows = len(data.test.texts)
        fine_tuned[held] = logits[rows:].argmax(axis=1) == data.challenge.labels[held]
        tags = [data.challenge.tags[i] for i in held]
        result = {"seed": args.seed, "folds": args.folds, "held_out_fold": held_out, "challenge_rows_seen": len(shown),
                  "curve": [dataclasses.astuple(epoch) for epoch in curve],
                  "test split": round(text.accuracy(logits[:rows], data.test.labels), 4),
                  "held-out fold, this model": by_category(fine_tuned[held], tags),
                  "held-out fold, served model": by_category(served[held], tags),
                  "seconds": round(time.time() - start)}
        emit(result, args.out)
    emit({"seed": args.seed, "folds": args.folds, "all folds": by_category(fine_tuned, data.challenge.tags),
           "served model": by_category(served, data.challenge.tags)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
