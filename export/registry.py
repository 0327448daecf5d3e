"""Every model this repository serves: how to build it, its tolerance and how Triton serves it.

Model names, tensor names and shapes are the public API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from export import datasets, sklearn2onnx, tabular, torch2onnx
from export.config import ServingOptions


@dataclasses.dataclass(frozen=True)
class Built:
    """A trained source model converted to ONNX, with what parity and metrics need.

    Attributes:
        onnx_model: the converted graph (``onnx.ModelProto``).
        holdout: held-out inputs by ONNX input name.
        expected: the source framework's outputs on ``holdout`` by ONNX output name.
        metric: held-out metric computed from the ONNX outputs.
    """

    onnx_model: object
    holdout: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    metric: Callable[[dict[str, np.ndarray]], float]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One exported model.

    Attributes:
        name: Triton model name (public API).
        source: the source framework, for messages and the model card.
        build: trains (seeded) and converts; returns a ``Built``.
        atol: max absolute error allowed between ONNX Runtime and the source framework.
        metric_name: what ``Built.metric`` measures on the held-out rows.
        serving: batching, instances and threads for ``config.pbtxt``.
        version: the version folder it is written to.
    """

    name: str
    source: str
    build: Callable[[], Built]
    atol: float
    metric_name: str
    serving: ServingOptions = ServingOptions()
    version: int = 1

    def __post_init__(self):
        if not self.name.replace("_", "").isalnum():
            raise ValueError(f"model name {self.name!r} must be letters, digits and underscores")
        if self.atol <= 0:
            raise ValueError(f"{self.name}: atol={self.atol} must be > 0")


def build_diabetes() -> Built:
    split = datasets.diabetes()
    pipeline = tabular.train_diabetes_pipeline(split)
    onnx_model = sklearn2onnx.convert(
        pipeline, n_features=split.x_train.shape[1], input_name="FEATURES", output_name="PREDICTION"
    )
    return Built(
        onnx_model=onnx_model,
        holdout={"FEATURES": split.x_test},
        expected={"PREDICTION": pipeline.predict(split.x_test).reshape(-1, 1)},
        metric=lambda outputs: _r2(split.y_test, outputs["PREDICTION"][:, 0]),
    )


def build_cancer() -> Built:
    import torch  # noqa: PLC0415 - heavy import only for this model

    split = datasets.breast_cancer()
    module = tabular.train_cancer_classifier(split)
    onnx_model = torch2onnx.convert(
        module, (torch.from_numpy(split.x_test[:2]),), input_names=["FEATURES"], output_names=["PROBABILITY"]
    )
    with torch.no_grad():
        probability = module(torch.from_numpy(split.x_test)).numpy()
    return Built(
        onnx_model=onnx_model,
        holdout={"FEATURES": split.x_test},
        expected={"PROBABILITY": probability},
        metric=lambda outputs: float(np.mean((outputs["PROBABILITY"][:, 0] > 0.5) == split.y_test)),
    )


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    residual = np.sum((truth - predicted) ** 2)
    return float(1.0 - residual / np.sum((truth - truth.mean()) ** 2))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # float32 graph vs float64 sklearn on targets of 25..346: about 1e-5 apart
        ModelSpec("diabetes_regressor", "scikit-learn", build_diabetes, atol=1e-4, metric_name="R2"),
        ModelSpec("cancer_classifier", "PyTorch", build_cancer, atol=1e-5, metric_name="accuracy"),
    )
}
