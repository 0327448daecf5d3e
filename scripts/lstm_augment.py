"""Distilling the LSTM on an augmented transfer set, measured against the same recipe without it (issue 17).

    .venv/bin/python scripts/lstm_augment.py --variants 0 --seed 0    # the control: no transfer set
    .venv/bin/python scripts/lstm_augment.py --variants 8 --seed 0    # export/builtin/lstm.py as it is (make export)

The teacher is the exported FP32 classifier (model_repository/minilm_sentiment/1, `make export` first), the model
export/builtin/lstm.py distils from. Each train and unlabelled sentence gets --variants perturbed copies
(lstm.perturb: each
word dropped with probability --drop, then with probability --ngram only a random span of 1-5 words kept), the
teacher's probabilities their targets, as for the unlabelled lines. export/builtin/lstm.py's training runs with these
settings. Prints and appends to --out one JSON line: the validation and test-split accuracy, the challenge scores
and the seconds taken.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pseudo_labels import emit, teacher_session

from tritonkit.export.builtin import lstm, text


class OnnxTeacher:
    """Looks like the PyTorch classifier to text.run_model: logits from the exported graph (parity 5e-6)."""

    def __call__(self, input_ids, attention_mask):
        import torch

        feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return torch.from_numpy(teacher_session().run(None, feed)[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=lstm.TRANSFER_VARIANTS,
                        help="perturbed copies of each sentence (0: the recipe without a transfer set)")
    parser.add_argument("--drop", type=float, default=lstm.WORD_DROP, help="probability of dropping each word")
    parser.add_argument("--ngram", type=float, default=lstm.SPAN_SHARE,
                        help="probability of keeping only a 1-5 word span")
    parser.add_argument("--seed", type=int, default=lstm.SEED)
    parser.add_argument("--out", type=Path, default=Path("lstm_augment.jsonl"))
    args = parser.parse_args(argv)
    teacher_session()  # fails early, naming the fix, when the export is missing
    data = text.sentiment_data()
    text.sentiment_classifier = OnnxTeacher  # the exported teacher, not a second fine-tuning
    lstm.TRANSFER_VARIANTS, lstm.WORD_DROP, lstm.SPAN_SHARE, lstm.SEED = args.variants, args.drop, args.ngram, args.seed
    start = time.time()
    model, _, tokenizer = lstm.train_lstm.__wrapped__()  # uncached: a fresh run
    logits = lstm.run_lstm(model, tokenizer, data.test.texts + data.challenge.texts)
    result = {"variants": args.variants, "drop": args.drop, "ngram": args.ngram, "seed": args.seed,
              "transfer_rows": len(data.unlabelled) + len(lstm.transfer_set(
                  data.train.texts + data.unlabelled, args.variants, args.seed, drop=args.drop, span_share=args.ngram)),
              "validation": round(text.accuracy(lstm.run_lstm(model, tokenizer, data.validation.texts),
                                                data.validation.labels), 4),
              **{name: round(value, 4) for name, value in text.scores(logits, data).items()},
              "seconds": round(time.time() - start)}
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
