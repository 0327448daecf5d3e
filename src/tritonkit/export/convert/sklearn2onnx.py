"""scikit-learn -> ONNX with skl2onnx: the whole pipeline, preprocessing included, no pickle."""

from __future__ import annotations

from tritonkit.export.convert.graph import name_batch_axis


def convert(estimator, *, n_features: int, input_name: str, output_name: str, opset: int = 17):
    """Converts a fitted regressor or pipeline with one FP32 input ``[batch, n_features]``.

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
