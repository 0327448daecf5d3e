"""What a model export is made of: the spec in the registry and what its builder returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tritonkit.export.convert.quantize import PLAIN, Int8Scheme
from tritonkit.export.repository.config import ServingOptions


@dataclasses.dataclass(frozen=True)
class Built:
    """A trained source model converted to ONNX, with what parity and metrics need.

    Attributes:
        onnx_model: the converted FP32 graph (``onnx.ModelProto``).
        holdout: held-out inputs by ONNX input name.
        expected: the source framework's outputs on ``holdout`` by ONNX output name.
        metric: held-out metric computed from a graph's outputs on ``holdout``.
        assets: extra files written beside ``model.onnx`` in every version folder (tokenizer, vocabulary).
        pytorch_module: the trained ``torch.nn.Module``, for specs with ``keeps_pytorch_weights``.
        calibration: input feeds from the training rows, for an INT8 scheme that measures activations.
        details: further held-out figures of the source model (name -> value), for the model card.
        breakdown: the held-out metric by condition or category (name -> value), computed like ``metric`` from
            each version's own outputs on ``holdout``; the model card tabulates it under ``breakdown_title``.
    """

    onnx_model: object
    holdout: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    metric: Callable[[dict[str, np.ndarray]], float]
    assets: dict[str, bytes] = dataclasses.field(default_factory=dict)
    pytorch_module: object | None = None
    calibration: tuple[dict[str, np.ndarray], ...] = ()
    details: dict[str, float] = dataclasses.field(default_factory=dict)
    breakdown: Callable[[dict[str, np.ndarray]], dict[str, float]] | None = None
    breakdown_title: str = ""

    def __post_init__(self):
        if self.breakdown is not None and not self.breakdown_title:
            raise ValueError("a breakdown needs a breakdown_title: the model card's heading for its table")


CHECKPOINT_KINDS = ("", "state_dict", "sklearn")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One exported model.

    Attributes:
        name: Triton model name (public API).
        source: the source framework, for messages and the model card.
        description: one line for the model card.
        build: trains (seeded) and converts; returns a ``Built``.
        atol: max absolute error allowed between the FP32 graph and the source framework.
        metric_name: what ``Built.metric`` measures on the held-out rows.
        int8_atol: when set, version 2 is the INT8 dynamic quantization of version 1, checked
            against the same source outputs within this looser tolerance.
        int8_scheme: how version 2 is quantized (quantize.Int8Scheme).
        int8_max_drop: when set, the export fails if version 2's held-out metric is more than this below
            version 1's: the bar for serving INT8 by default.
        labels: class names of the classification output ``logits`` (written to ``labels.txt``); the graph then
            also answers ``PROBABILITIES`` and ``LABEL`` itself (``convert/head.py``).
        serving: batching, instances, threads and warm-up for ``config.pbtxt``.
        tensorrt: whether ``--tensorrt`` builds an engine (TensorRT has no ai.onnx.ml operators).
        fp16_atol: max absolute error of the TensorRT FP16 engine against ONNX Runtime.
        step_assets: ensemble steps (folders of ``ensembles/``) whose version 1 also gets ``Built.assets``,
            such as the tokenizer step that must cut text exactly like this model's training did.
        keeps_pytorch_weights: save the trained module's ``state_dict`` to ``artifacts/pytorch/<name>.pt``
            (beside the repository, never inside it), for the benchmark's PyTorch baseline (bench/).
        checkpoint: what ``--checkpoint FILE`` takes for this model in place of training (``"state_dict"``: a
            PyTorch ``state_dict`` of the builder's module; ``"sklearn"``: a fitted scikit-learn estimator saved
            with joblib); empty when the model has no such path. The builder is then called with
            ``checkpoint=<the loaded object>``.
        intended_use, limitations, license: the model card's sections (``CARD.md`` beside the config).
    """

    name: str
    source: str
    description: str
    build: Callable[[], Built]
    atol: float
    metric_name: str
    int8_atol: float | None = None
    int8_scheme: Int8Scheme = PLAIN
    int8_max_drop: float | None = None
    labels: tuple[str, ...] = ()
    serving: ServingOptions = ServingOptions()
    tensorrt: bool = True
    fp16_atol: float = 0.05
    step_assets: tuple[str, ...] = ()
    keeps_pytorch_weights: bool = False
    checkpoint: str = ""
    intended_use: str = ""
    limitations: str = ""
    license: str = ""

    def __post_init__(self):
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"model name {self.name!r} must be letters, digits, underscores and hyphens")
        if self.atol <= 0 or (self.int8_atol is not None and self.int8_atol <= 0):
            raise ValueError(f"{self.name}: tolerances must be > 0")
        if self.checkpoint not in CHECKPOINT_KINDS:
            raise ValueError(f"{self.name}: checkpoint={self.checkpoint!r} must be one of {CHECKPOINT_KINDS}")

    @property
    def versions(self) -> tuple[int, ...]:
        return (1, 2) if self.int8_atol is not None else (1,)
