"""Pseudo-labelling for the MiniLM classifier, measured against the same recipe without it (issue 17, item 4).

    .venv/bin/python scripts/pseudo_labels.py --threshold 0.85 --seed 0    # train + confident pseudo-labels
    .venv/bin/python scripts/pseudo_labels.py --threshold 1.01 --seed 0    # the control: no pseudo-label kept

The teacher is the exported FP32 classifier (model_repository/minilm_sentiment/1, `make export` first). It labels
data/sentiment/unlabelled.txt; the lines whose top probability reaches the threshold join the train split with
that label, and export/builtin/text.py's fine-tuning runs unchanged on the result (its seed set by --seed). Prints and
appends to --out one JSON line: rows kept, the validation curve and the test-split and challenge scores. About 5-6
minutes a run on 2 cores. data/sentiment/README.md has the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path

import numpy as np

from tritonkit import paths
from tritonkit.export.builtin import text


@functools.lru_cache(maxsize=1)
def teacher_session():
    """The exported FP32 classifier's ONNX Runtime session (the sentiment experiment scripts share it)."""
    import onnxruntime as ort

    graph = paths.model_repository() / "minilm_sentiment" / "1" / "model.onnx"
    if not graph.is_file():
        raise SystemExit(f"{graph} is missing: run `make export` first")
    return ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])


def teacher_probabilities(texts: list[str]) -> np.ndarray:
    session = teacher_session()
    logits = [session.run(None, dict(text.tokenize(texts[start : start + 64])))[0]
              for start in range(0, len(texts), 64)]
    return text.probabilities(np.concatenate(logits))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=0.85, help="top probability a pseudo-label needs")
    parser.add_argument("--seed", type=int, default=text.SEED)
    parser.add_argument("--out", type=Path, default=Path("pseudo_labels.jsonl"))
    args = parser.parse_args(argv)
    data = text.sentiment_data()
    chances = teacher_probabilities(data.unlabelled)
    keep = chances.max(axis=1) >= args.threshold
    kept = [line for line, chosen in zip(data.unlabelled, keep, strict=True) if chosen]
    print(f"{len(kept)} of {len(keep)} unlabelled lines at >= {args.threshold} "
          f"({int((chances.argmax(axis=1)[keep] == 1).sum())} positive)", flush=True)
    train = text.Labelled(data.train.texts + kept, np.concatenate([data.train.labels, chances.argmax(axis=1)[keep]]),
                          data.train.tags + ["pseudo"] * len(kept))
    augmented = dataclasses.replace(data, train=train)
    text.sentiment_data = lambda: augmented  # fine_tune reads the data through it
    text.SEED = args.seed
    start = time.time()
    model, curve = text.fine_tune.__wrapped__()  # uncached: a fresh run
    scores = text.scores(text.run_model(model, data.test.texts + data.challenge.texts), data)
    result = {"threshold": args.threshold, "seed": args.seed, "pseudo_rows": len(kept),
              "curve": [dataclasses.astuple(epoch) for epoch in curve],
              **{name: round(value, 4) for name, value in scores.items()}, "seconds": round(time.time() - start)}
    emit(result, args.out)
    return 0


def emit(result: dict, out: Path) -> None:
    """Prints a run's result as one JSON line and appends it to ``out`` (the sentiment experiment scripts share it)."""
    print(json.dumps(result), flush=True)
    with out.open("a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
