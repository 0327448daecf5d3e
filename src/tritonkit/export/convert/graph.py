"""ONNX graph helpers: the batch axis, structural checks and tensor specs for config generation."""

from __future__ import annotations

import dataclasses
import re

from tritonkit.export import GraphError

BATCH_AXIS = "batch"
SEQUENCE_AXIS = "sequence"
_UNNAMED = re.compile(r"^\d+$|^onnx::")  # what exporters call tensors nobody named

# ONNX TensorProto element types -> Triton data types (model_config.proto DataType).
TRITON_DTYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    16: "TYPE_BF16",
}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One graph input or output as Triton sees it: ``dims`` exclude the batch axis when batched."""

    name: str
    data_type: str
    dims: tuple[int, ...]


def name_batch_axis(model):
    """Gives the first axis of every graph input and output the ``batch`` name (skl2onnx leaves it unnamed)."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_AXIS
    return model


def check_graph(model, model_name: str):
    """Runs onnx.checker and strict shape inference, and refuses unnamed tensors.

    Returns:
        The shape-inferred model.

    Raises:
        GraphError: naming the model, the problem and the fix.
    """
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GraphError(f"{model_name}: the ONNX graph is invalid: {exc}") from exc
    for value in [*model.graph.input, *model.graph.output]:
        if _UNNAMED.match(value.name):
            raise GraphError(
                f"{model_name}: graph tensor {value.name!r} has no meaningful name; pass input_names/output_names"
            )
    return inferred


def tensor_specs(values, *, batched: bool, model_name: str) -> list[TensorSpec]:
    """Triton tensor specs for graph inputs or outputs; with ``batched`` the first axis must be dynamic."""
    specs = []
    for value in values:
        tensor = value.type.tensor_type
        if tensor.elem_type not in TRITON_DTYPES:
            raise GraphError(f"{model_name}: tensor {value.name!r} has ONNX element type {tensor.elem_type}, "
                             "which Triton cannot serve; cast it in the model")
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if batched:
            if not dims or dims[0] != -1:
                raise GraphError(f"{model_name}: tensor {value.name!r} has shape {dims}; a batched model needs a "
                                 f"dynamic first axis (export it with a named '{BATCH_AXIS}' axis)")
            dims = dims[1:]
        specs.append(TensorSpec(value.name, TRITON_DTYPES[tensor.elem_type], tuple(dims)))
    return specs
