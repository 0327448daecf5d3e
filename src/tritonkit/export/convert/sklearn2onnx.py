"""scikit-learn -> ONNX with skl2onnx: the whole pipeline, preprocessing included, no pickle in the graph.

Classifiers give plain tensors, never ZipMap's list of dicts: ``label`` ``[batch]`` and ``probabilities``
``[batch, classes]`` in ``classes_`` order.
"""

from __future__ import annotations

import numpy as np

from tritonkit.export.convert.graph import name_batch_axis

# numpy dtype kind and size -> skl2onnx tensor type name
TENSOR_TYPES = {("f", 4): "FloatTensorType", ("f", 8): "DoubleTensorType", ("i", 8): "Int64TensorType",
                ("i", 4): "Int32TensorType", ("U", 0): "StringTensorType"}


def convert(estimator, *, n_features: int, input_name: str, output_name: str, opset: int = 17):
    """Converts a fitted regressor or pipeline with one FP32 input ``[batch, n_features]`` and one output
    ``[batch, 1]`` (the built-in ``diabetes_regressor``).

    Returns:
        onnx.ModelProto whose input and output carry the given names and a ``batch`` axis.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = convert_sklearn(
        estimator,
        initial_types=[(input_name, FloatTensorType([None, n_features]))],
        final_types=[(output_name, FloatTensorType([None, 1]))],
        target_opset=opset,
    )
    return name_batch_axis(model)


def convert_estimator(estimator, *, input_name: str, n_features: int, dtype: np.dtype, opset: int = 17):
    """Converts any fitted estimator or pipeline skl2onnx knows, with one input ``[batch, n_features]`` of
    ``dtype``; classifiers without ZipMap (see the module docstring).

    Raises:
        ValueError: the dtype has no ONNX tensor type here.
        RuntimeError, NameError: skl2onnx has no converter for a step (its message names the step).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common import data_types

    dtype = np.dtype(dtype)
    key = (dtype.kind, 0 if dtype.kind == "U" else dtype.itemsize)
    if key not in TENSOR_TYPES:
        raise ValueError(f"features of dtype {dtype} have no ONNX tensor type here; use float32, float64, int32, "
                         "int64 or strings")
    tensor_type = getattr(data_types, TENSOR_TYPES[key])
    options = {}
    if hasattr(estimator, "predict_proba"):
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        options = {id(estimator): {"zipmap": False}, id(final): {"zipmap": False}}
    model = convert_sklearn(estimator, initial_types=[(input_name, tensor_type([None, n_features]))],
                            options=options or None, target_opset=opset)
    return name_batch_axis(model)
