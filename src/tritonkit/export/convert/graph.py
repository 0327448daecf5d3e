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


def graph_inputs(onnx_model) -> list:
    """Graph inputs that are real inputs (older exporters also list initializers as inputs)."""
    initializers = {init.name for init in onnx_model.graph.initializer}
    return [value for value in onnx_model.graph.input if value.name not in initializers]


def dims_of(value) -> list[int]:
    """A graph value's dims, -1 where free (a named or missing dim)."""
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def has_batch_axis(model) -> bool:
    """Whether every graph input and output has a free first axis: Triton can then batch the model."""
    values = [*graph_inputs(model), *model.graph.output]
    return bool(values) and all(dims_of(value)[:1] == [-1] for value in values)


def rename_tensors(model, renames: dict[str, str]):
    """Renames graph inputs and outputs (and every use of them) in place; returns the model."""
    if not renames:
        return model
    for value in [*model.graph.input, *model.graph.output]:
        value.name = renames.get(value.name, value.name)
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    return model


def columns_for_vectors(model) -> tuple[list[str], list[str]]:
    """Gives graph inputs and outputs of shape ``[batch]`` the shape ``[batch, 1]`` (Squeeze and Unsqueeze nodes
    around the original graph), since a batched Triton tensor needs at least one dim besides the batch.

    Returns:
        The names of the inputs and of the outputs that changed (a client sends and gets them as ``[batch, 1]``).
    """
    from onnx import helper

    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 13)
    axes_name = "tritonkit_axis_1"
    nodes_before, nodes_after, changed_inputs, changed_outputs = [], [], [], []

    def axes_node(op: str, source: str, target: str):
        if opset >= 13:
            return helper.make_node(op, [source, axes_name], [target], name=f"{target}_{op.lower()}")
        return helper.make_node(op, [source], [target], axes=[1], name=f"{target}_{op.lower()}")

    for value in graph_inputs(model):
        if len(dims_of(value)) == 1:
            inner = f"{value.name}__vector"
            for node in model.graph.node:
                node.input[:] = [inner if name == value.name else name for name in node.input]
            nodes_before.append(axes_node("Squeeze", value.name, inner))
            _append_dim(value, 1)
            changed_inputs.append(value.name)
    for value in model.graph.output:
        if len(dims_of(value)) == 1:
            inner = f"{value.name}__vector"
            for node in model.graph.node:
                node.output[:] = [inner if name == value.name else name for name in node.output]
                node.input[:] = [inner if name == value.name else name for name in node.input]
            nodes_after.append(axes_node("Unsqueeze", inner, value.name))
            _append_dim(value, 1)
            changed_outputs.append(value.name)
    if nodes_before or nodes_after:
        if opset >= 13:
            model.graph.initializer.append(helper.make_tensor(axes_name, 7, [1], [1]))  # INT64
        nodes = [*nodes_before, *model.graph.node, *nodes_after]
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return changed_inputs, changed_outputs


def _append_dim(value, size: int) -> None:
    value.type.tensor_type.shape.dim.add().dim_value = size
