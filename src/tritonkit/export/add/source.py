"""What every loader of ``export add`` returns: the graph to serve and how to ask the source the same question."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tritonkit.export.add.sample import InputSpec


@dataclasses.dataclass(frozen=True)
class TextModel:
    """A Hugging Face classifier served as a text endpoint: what its tokenizer step and labels need.

    Attributes:
        tokenizer_json: the fast tokenizer, as the tokenizer step loads it (``tokenizers``).
        max_tokens: where texts are truncated: the model's maximum length.
        pad_id: the padding token's id.
        input_names: the graph's inputs in order (``input_ids``, ``attention_mask``, maybe ``token_type_ids``).
        labels: class names by class id (``config.id2label``).
        tokenize: texts -> the graph's inputs, padded to the longest (the source's own tokenizer).
        texts: the texts parity ran on.
    """

    tokenizer_json: str
    max_tokens: int
    pad_id: int
    input_names: tuple[str, ...]
    labels: tuple[str, ...]
    tokenize: Callable[[list[str]], dict[str, np.ndarray]]
    texts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A user's model read and converted, not yet checked.

    Attributes:
        kind: one of ``detect.KINDS``.
        onnx_model: the FP32 graph to serve (``onnx.ModelProto``), Triton-ready (named tensors, batch axis).
        inputs: the graph's inputs.
        reference: the source framework on graph-shaped inputs -> graph-shaped outputs by name.
        reference_name: what ``reference`` runs, for messages and the card (``PyTorch (TorchScript)``).
        holdout: the rows parity runs on (the sample and rows made around it), by input name.
        atol: the default tolerance of this kind (``--atol`` overrides it).
        notes: what the loader changed or noticed, printed and written to the card.
        text: set for a Hugging Face text classifier.
    """

    kind: str
    onnx_model: object
    inputs: list[InputSpec]
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    reference_name: str
    holdout: dict[str, np.ndarray]
    atol: float
    notes: tuple[str, ...] = ()
    text: TextModel | None = None
