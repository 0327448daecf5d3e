"""HuggingFace transformers -> ONNX: a sentence encoder with pooling in the graph, dynamic batch and sequence.

transformers 5.x models export when wrapped in a module that passes keyword arguments (and explicit
``token_type_ids``); the wrapper here also puts sentence-transformers' mean pooling and L2 normalization into
the graph, so clients get finished embeddings. They are traced with the TorchScript exporter, whose graph ONNX
Runtime runs 5-12 % faster than the dynamo exporter's (see ``torch2onnx``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tritonkit.export.convert import torch2onnx

INPUT_NAMES = ("input_ids", "attention_mask")


def mean_pooled_encoder(bert):
    """Wraps a BERT-family model: input_ids, attention_mask [batch, sequence] -> unit vectors [batch, hidden]."""
    import torch

    class MeanPooledEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            states = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # padding does not count
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooledEncoder().eval()


def load_sentence_encoder(model_dir: Path):
    """The pretrained model from local files only (nothing is downloaded), wrapped by ``mean_pooled_encoder``."""
    from transformers import AutoModel

    quiet_transformers()
    return mean_pooled_encoder(AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval())


def quiet_transformers() -> None:
    """No per-weight progress bars in `make export`'s per-model progress lines."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def convert(module, examples: dict[str, np.ndarray], output_names: list[str], max_sequence: int):
    """Exports a (input_ids, attention_mask) module with dynamic ``batch`` and ``sequence`` axes (TorchScript)."""
    import torch

    tensors = tuple(torch.from_numpy(examples[name]) for name in INPUT_NAMES)
    return torch2onnx.convert(
        module, tensors, input_names=list(INPUT_NAMES), output_names=output_names, max_sequence=max_sequence,
        torchscript=True,
    )


def logits_module(classifier, input_names: tuple[str, ...]):
    """Wraps a transformers ``*ForSequenceClassification`` model: its inputs, positionally in ``input_names`` order
    (``input_ids``, ``attention_mask`` and, for BERT, ``token_type_ids``) -> logits ``[batch, labels]``."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = classifier

        def forward(self, *tensors):
            return self.classifier(**dict(zip(input_names, tensors, strict=True))).logits

    return Logits().eval()


def convert_classifier(module, examples: dict[str, np.ndarray], max_sequence: int):
    """Exports a ``logits_module`` with dynamic ``batch`` and ``sequence`` axes (TorchScript, as the encoders)."""
    import torch

    tensors = tuple(torch.from_numpy(array) for array in examples.values())
    return torch2onnx.convert(module, tensors, input_names=list(examples), output_names=["logits"],
                              max_sequence=max_sequence, torchscript=True)
