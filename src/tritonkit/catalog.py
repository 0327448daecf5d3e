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
# The tokenizer steps pad each request to the smallest bucket that holds it; a longer request keeps its own length.
# A padded token costs as much as a real one, and on a few CPU cores only short texts gain from batching (the
# ceiling's best batch is 2-4 for them, 1 for ~100-word texts): the buckets let short texts batch, while long ones
# are neither padded (they were by 10 % with 128/160 buckets) nor batched, which raised their p95 (requests batch
# only when their shapes agree). bench/results/TUNING.md, steps 2 and 7.
LENGTH_BUCKETS = (16, 24, 32, 48, 64)

# The MiniLM endpoints serve the latest version of their model (INT8 on CPU); the *_fp32 ones pin FP32 version 1.
SENTIMENT_ENDPOINTS = ("text_sentiment", "text_sentiment_fp32", "lstm_sentiment")
EMBEDDING_ENDPOINTS = ("text_embedding", "text_embedding_fp32")

# The recommender endpoint: a user id and K -> the top K movies the user has not rated (K at most this).
RECOMMENDER_ENDPOINT = "movie_recommendations"
MAX_RECOMMENDATIONS = 100
