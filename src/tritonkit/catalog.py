"""Facts about the served models that several parts need, defined once (standard library only).

Export trains and writes ``labels.txt`` and the configs from these; the client decodes answers with them;
the load test and the benchmark draw held-out inputs with them; the ensembles' Python steps import this
module inside tritonserver (the Dockerfile copies it with ``tritonkit.steps``).
"""

from __future__ import annotations

SENTIMENT_LABELS = ("negative", "positive")  # class id = index: the PROBABILITIES order of both text classifiers
DIGIT_LABELS = tuple(str(digit) for digit in range(10))

DIGITS_TRAIN_IMAGES = 1500  # load_digits rows [0, 1500) train the digit model; the other 297 are held out

# Word pieces: sentence-transformers' max_seq_length for all-MiniLM-L6-v2; the LSTM truncates there too.
MAX_TOKENS = 256
# The tokenizer steps pad each request to the smallest bucket that holds it. Fine steps: a padded token costs
# as much as a real one and on a few CPU cores batching gains little (bench/results/TUNING.md, step 2):
# ~100-word texts (110-140 pieces) fill 160, not 256.
LENGTH_BUCKETS = (16, 24, 32, 48, 64, 96, 128, 160, 192, MAX_TOKENS)

SENTIMENT_ENDPOINTS = ("text_sentiment", "lstm_sentiment")
