"""Every model this repository serves: how to build it, its tolerances and how Triton serves it.

Model names, tensor names and shapes are the public API. The builders live in ``export/builders.py``.
"""

from __future__ import annotations

from export import builders, text, vision
from export.config import ServingOptions
from export.spec import ModelSpec


# Two instances: with one, its dynamic batcher thread burns 12-15% of a CPU whenever requests queue behind
# the busy instance (bench/results/TUNING.md, step 4); threads are capped at the usable CPUs at run time.
TEXT_SERVING = ServingOptions(max_batch_size=32, instance_count=2, intra_op_threads=2)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "diabetes_regressor", "scikit-learn",
            "Pipeline(StandardScaler, PCA(8), LinearRegression) on load_diabetes rows 0-399",
            builders.diabetes, atol=1e-4, metric_name="R2",  # float32 graph vs float64 sklearn: ~3e-5 apart
            tensorrt=False,  # Scaler and LinearRegressor are ai.onnx.ml operators
        ),
        ModelSpec(
            "cancer_classifier", "PyTorch",
            "feed-forward 30-16-1 with standardization in the graph, load_breast_cancer rows 0-468",
            builders.cancer, atol=1e-5, metric_name="accuracy",
        ),
        ModelSpec(
            "minilm_encoder", "sentence-transformers",
            "all-MiniLM-L6-v2 with mean pooling and L2 normalization in the graph",
            builders.minilm_encoder, atol=1e-5, metric_name="min cosine to sentence-transformers",
            int8_atol=0.1,  # per element of a unit vector; the metric (cosine) is the real check
            serving=TEXT_SERVING,
        ),
        ModelSpec(
            "minilm_sentiment", "PyTorch + transformers",
            "all-MiniLM-L6-v2 + linear head, fine-tuned together on data/sentiment (540 sentences, 4 epochs)",
            builders.minilm_sentiment, atol=1e-4, metric_name="accuracy",
            int8_atol=2.5,  # logits span about +-20 (LOGIT_SCALE); held-out accuracy is the real check
            labels=text.LABELS, serving=TEXT_SERVING, step_assets=("minilm_tokenizer",),
            keeps_pytorch_weights=True,  # bench/ serves it with Flask + PyTorch as the baseline
        ),
        ModelSpec(
            "lstm_sentiment_classifier", "PyTorch",
            "embedding(64, from MiniLM pieces) + LSTM(128) + linear, distilled from minilm_sentiment",
            builders.lstm_sentiment, atol=1e-4, metric_name="accuracy",
            labels=text.LABELS, serving=TEXT_SERVING, step_assets=("lstm_tokenizer",),
        ),
        ModelSpec(
            "digit_resnet", "PyTorch",
            "residual CNN on load_digits images 0-1499, input 8x8 ink in 0..1",
            builders.digit_resnet, atol=1e-4, metric_name="accuracy",
            labels=vision.LABELS, serving=ServingOptions(max_batch_size=64),
            keeps_pytorch_weights=True,
        ),
    )
}
