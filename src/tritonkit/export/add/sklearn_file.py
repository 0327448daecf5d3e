"""A scikit-learn estimator or ``Pipeline`` saved with joblib or pickle, converted with skl2onnx.

Loading a pickle runs the code it names: load only files you trust (``export add --help`` says so too). The
sample gives the feature count and dtype (one array ``[rows, features]``). Classifiers answer ``label`` and
``probabilities`` (``classes_`` order), regressors ``prediction``, transformers ``output``; ``--output-names``
renames them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tritonkit.export import SourceError
from tritonkit.export.add import detect
from tritonkit.export.add.sample import InputSpec, synthesize
from tritonkit.export.add.source import Loaded
from tritonkit.export.convert import sklearn2onnx
from tritonkit.export.convert.graph import dims_of, rename_tensors

ATOL = 1e-4  # a float32 graph against float64 scikit-learn; float64 samples give float64 graphs (closer)
INPUT_NAME = "features"
SKL2ONNX_NAMES = {"variable": "prediction"}  # skl2onnx's default name for a regressor's output


def load(path: Path, sample: dict[str, np.ndarray] | None, input_name: str | None) -> Loaded:
    estimator = read_estimator(path)
    if sample is None:
        raise SourceError("a scikit-learn model needs --sample FILE.npz: one array [rows, features] gives the "
                          "feature count and dtype (numpy.savez(path, features=X[:16]))")
    if len(sample) != 1:
        raise SourceError(f"the sample holds {len(sample)} arrays ({', '.join(sample)}); a scikit-learn model takes "
                          "one array [rows, features]")
    rows = next(iter(sample.values()))
    if rows.ndim != 2:
        raise SourceError(f"the sample's array has shape {list(rows.shape)}; a scikit-learn model takes "
                          "[rows, features]")
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and expected != rows.shape[1]:
        raise SourceError(f"the sample has {rows.shape[1]} features but the estimator was fitted on {expected}; "
                          "pass rows like its training rows")
    name = input_name or INPUT_NAME
    try:
        onnx_model = sklearn2onnx.convert_estimator(estimator, input_name=name, n_features=rows.shape[1],
                                                    dtype=rows.dtype)
    except Exception as exc:  # skl2onnx raises RuntimeError, NameError, ValueError... naming the step
        raise SourceError(f"skl2onnx cannot convert this {type(estimator).__name__} ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:240]}); every step needs a converter: see skl2onnx's "
                          "supported-models list") from None
    rename_tensors(onnx_model, {old: new for old, new in SKL2ONNX_NAMES.items()
                                if old in {value.name for value in onnx_model.graph.output}})
    reference = _reference(estimator, name, onnx_model)
    return Loaded(detect.SKLEARN, onnx_model, [InputSpec(name, rows.dtype, (-1, rows.shape[1]))], reference,
                  f"scikit-learn {type(estimator).__name__}", synthesize({name: rows}), ATOL)


def read_estimator(path: Path):
    import joblib

    try:
        estimator = joblib.load(path)
    except Exception as exc:
        raise SourceError(f"{path} cannot be loaded with joblib ({type(exc).__name__}: {str(exc)[:160]}); save the "
                          "fitted model with joblib.dump(model, path)") from None
    if not (hasattr(estimator, "fit") and any(hasattr(estimator, name) for name in ("predict", "transform"))):
        raise SourceError(f"{path} holds a {type(estimator).__module__}.{type(estimator).__name__}, not a fitted "
                          "scikit-learn estimator or Pipeline")
    return estimator


def _reference(estimator, input_name: str, onnx_model):
    outputs = {value.name: dims_of(value) for value in onnx_model.graph.output}

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = feeds[input_name]
        answers = {}
        for name, dims in outputs.items():
            if name == "label":
                value = estimator.predict(rows)
            elif name == "probabilities":
                value = estimator.predict_proba(rows)
            elif hasattr(estimator, "predict"):
                value = estimator.predict(rows)
            else:
                value = estimator.transform(rows)
            value = np.asarray(value)
            answers[name] = value.reshape(len(rows), *[d if d > 0 else -1 for d in dims[1:]]) if len(dims) > 1 \
                else value
        return answers

    return run
