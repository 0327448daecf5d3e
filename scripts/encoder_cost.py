"""What a larger encoder would cost this project's export and serving, measured on this machine. A diagnostic.

    .venv/bin/python scripts/encoder_cost.py     # about 4 minutes on 2 cores

Issue 17's MiniLM bars (test split 0.93, every challenge category 0.90) look out of reach for the 6-layer,
384-wide all-MiniLM-L6-v2 (scripts/challenge_folds.py); the lever left is a larger pretrained encoder. None with
trusted weights is packaged on PyPI, but what one would cost can be measured without its weights: the time of a
step depends on the shapes, not the values. So this times, for the served MiniLM-L6 (its real weights) and for
randomly initialised encoders of two larger shapes (MiniLM-L12's: 12 layers, 384 wide; all-mpnet-base-v2's:
12 layers, 768 wide), exactly the work make export does with one:

- a fine-tuning step: mean pooling, the linear head, cross-entropy, backward and AdamW, on 16 train sentences;
- scoring: a forward pass over 64 sentences (the validation split after every epoch, the LSTM's transfer set);
- one request: a forward pass over one short sentence, as the served endpoint does (PyTorch, not ONNX Runtime:
  the ratio between the shapes is what counts).

and extrapolates an export: 4 epochs over the train split, scoring the validation split after each, the
teacher labelling the LSTM's transfer set once. Prints a table and appends one JSON line a shape to --out.
data/sentiment/README.md has the figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from pseudo_labels import emit

from tritonkit.bench import report
from tritonkit.export.builtin import lstm, text

SHAPES = {  # name -> (layers, width, heads, feed-forward width); None: the real all-MiniLM-L6-v2
    "all-MiniLM-L6-v2 (served, real weights)": None,
    "MiniLM-L12 shape (12 x 384)": (12, 384, 12, 1536),
    "all-mpnet-base-v2 shape (12 x 768)": (12, 768, 12, 3072),
}
TIMED_STEPS = 8
WARMUP_STEPS = 2
SHORT_SENTENCE = "The room was clean, but the staff never answered the phone."


def encoder(shape):
    """A mean-pooled, L2-normalised encoder of the given shape (random weights), or the served MiniLM."""
    import copy

    import torch
    from transformers import BertConfig, BertModel

    if shape is None:
        return copy.deepcopy(text.load_encoder())
    layers, width, heads, feed_forward = shape
    bert = BertModel(BertConfig(vocab_size=text.minilm_tokenizer().vocab_size, hidden_size=width,
                                num_hidden_layers=layers, num_attention_heads=heads,
                                intermediate_size=feed_forward), add_pooling_layer=False)

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    return Pooled()


def seconds(work, repeats: int) -> float:
    """The median wall time of work() over repeats runs, after WARMUP_STEPS untimed ones."""
    for _ in range(WARMUP_STEPS):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, shape, data: text.SentimentData, transfer_lines: int) -> dict:
    import torch

    model = text._sentiment_classifier_class()(encoder(shape))
    if shape is not None:  # the head's width follows the encoder's
        model.head = torch.nn.Linear(shape[1], len(text.LABELS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=text.ENCODER_LEARNING_RATE)
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(data.train.texts), text.FINE_TUNE_BATCH, replace=False).tolist()
               for _ in range(WARMUP_STEPS + TIMED_STEPS)]
    labels = torch.from_numpy(data.train.labels)

    def step():
        batch = batches.pop()
        feed = text.tokenize([data.train.texts[i] for i in batch])
        logits = model(torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"]))
        loss = torch.nn.functional.cross_entropy(logits, labels[batch], label_smoothing=text.LABEL_SMOOTHING)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    step_s = seconds(step, TIMED_STEPS)
    model.eval()
    scored = data.validation.texts[: text.ENCODE_BATCH]
    score_s = seconds(lambda: text.run_model(model, scored), TIMED_STEPS) / len(scored)
    one_s = seconds(lambda: text.run_model(model, [SHORT_SENTENCE]), 30)
    steps_an_epoch = -(-len(data.train.texts) // text.FINE_TUNE_BATCH)
    epoch_s = step_s * steps_an_epoch + score_s * len(data.validation.texts)
    export_s = text.MAX_FINE_TUNE_EPOCHS * epoch_s + score_s * transfer_lines
    return {"encoder": name, "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "fine_tuning_step_s": round(step_s, 3), "scoring_ms_a_sentence": round(score_s * 1e3, 2),
            "one_request_ms": round(one_s * 1e3, 2), "epoch_min": round(epoch_s / 60, 1),
            "export_min": round(export_s / 60, 1),
            "cpu": f"{report.machine()}, torch threads {torch.get_num_threads()}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("encoder_cost.jsonl"))
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(0)
    data = text.sentiment_data()
    transfer_lines = len(data.unlabelled) + len(lstm.transfer_set(
        data.train.texts + data.unlabelled, lstm.TRANSFER_VARIANTS, lstm.SEED, drop=lstm.WORD_DROP,
        span_share=lstm.SPAN_SHARE))
    print(f"train {len(data.train.texts)} sentences, validation {len(data.validation.texts)}, "
          f"transfer set {transfer_lines} lines; {TIMED_STEPS} timed steps a shape", flush=True)
    rows = []
    for name, shape in SHAPES.items():
        rows.append(measure(name, shape, data, transfer_lines))
        emit(rows[-1], args.out)
    base = rows[0]
    print("\n| encoder | parameters (M) | fine-tuning step (s) | epoch (min) | export's MiniLM part (min) "
          "| one request (ms) | x served |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['encoder']} | {row['parameters_m']} | {row['fine_tuning_step_s']} | {row['epoch_min']} "
              f"| {row['export_min']} | {row['one_request_ms']} "
              f"| {row['one_request_ms'] / base['one_request_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
