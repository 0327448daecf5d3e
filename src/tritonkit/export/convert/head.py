"""A classifier's labels computed inside its graph: ``logits`` -> ``PROBABILITIES`` and ``LABEL``.

The Python postprocess step (``tritonkit.steps.labels``: softmax, then the most probable label as a string) as
three ONNX operators appended to the classifier's own graph: ``Softmax`` -> ``PROBABILITIES``, ``ArgMax`` and
``LabelEncoder`` (ai.onnx.ml) -> ``LABEL``. Its pipeline then has one Python hop fewer (bench/results/TUNING.md,
"Heads in the graph"). ``logits`` stays an output, so the model answers as before to whoever calls it directly.

A TensorRT engine holds neither ``LabelEncoder`` nor a string output: the GPU repository builds its engine from
``without_head`` and serves the head as its own small ONNX model (``head_model``) behind it
(``builtin/tensorrt.py``).
"""

from __future__ import annotations

import numpy as np

from tritonkit.export.verify import check_parity

LOGITS, PROBABILITIES, LABEL = "logits", "PROBABILITIES", "LABEL"
PREFIX = "head/"  # the appended nodes' names and their one internal tensor
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 2  # LabelEncoder with keys_int64s / values_strings (ONNX Runtime 1.19.2 has it)
ONNX_OPSET = 13  # Softmax over the last axis alone (for the stand-alone head)
IR_VERSION = 8  # onnx's newest IR is more than ONNX Runtime 1.19.2 (NGC 24.10) or 1.31.1 reads; 8 has opset 13
PROBABILITY_ATOL = 1e-6  # the graph's softmax against numpy's, in FP32


def _nodes(labels: tuple[str, ...]) -> list:
    from onnx import helper

    return [
        helper.make_node("Softmax", [LOGITS], [PROBABILITIES], name=f"{PREFIX}softmax", axis=-1),
        helper.make_node("ArgMax", [PROBABILITIES], [f"{PREFIX}class"], name=f"{PREFIX}argmax", axis=-1, keepdims=1),
        helper.make_node("LabelEncoder", [f"{PREFIX}class"], [LABEL], name=f"{PREFIX}label", domain=ML_DOMAIN,
                         keys_int64s=list(range(len(labels))), values_strings=list(labels), default_string=""),
    ]


def _outputs(labels: tuple[str, ...], batch) -> list:
    from onnx import TensorProto, helper

    return [helper.make_tensor_value_info(LABEL, TensorProto.STRING, [batch, 1]),
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [batch, len(labels)])]


def has_head(model) -> bool:
    return any(node.name.startswith(PREFIX) for node in model.graph.node)


def with_head(model, labels: tuple[str, ...]):
    """A copy of ``model`` (whose output ``logits`` is [batch, len(labels)]) with the head appended."""
    import onnx

    logits = next((value for value in model.graph.output if value.name == LOGITS), None)
    if logits is None or has_head(model):
        raise ValueError(f"a head goes after an output named {LOGITS!r}, once; the graph has "
                         f"{[value.name for value in model.graph.output]}")
    dims = logits.type.tensor_type.shape.dim
    if len(dims) != 2 or (dims[1].HasField("dim_value") and dims[1].dim_value != len(labels)):
        raise ValueError(f"{LOGITS} must be [batch, {len(labels)}] for the labels {labels}")
    batch = dims[0].dim_param or (dims[0].dim_value or "batch")
    headed = onnx.ModelProto()
    headed.CopyFrom(model)
    headed.graph.node.extend(_nodes(labels))
    headed.graph.output.extend(_outputs(labels, batch))
    if not any(opset.domain == ML_DOMAIN for opset in headed.opset_import):
        headed.opset_import.append(onnx.helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    return headed


def without_head(model):
    """A copy of ``model`` cut back at ``logits`` (what a TensorRT engine is built from)."""
    import onnx

    plain = onnx.ModelProto()
    plain.CopyFrom(model)
    kept = [node for node in plain.graph.node if not node.name.startswith(PREFIX)]
    del plain.graph.node[:]
    plain.graph.node.extend(kept)
    outputs = [value for value in plain.graph.output if value.name not in (PROBABILITIES, LABEL)]
    del plain.graph.output[:]
    plain.graph.output.extend(outputs)
    if not any(node.domain == ML_DOMAIN for node in kept):
        opsets = [opset for opset in plain.opset_import if opset.domain != ML_DOMAIN]
        del plain.opset_import[:]
        plain.opset_import.extend(opsets)
    return plain


def head_model(labels: tuple[str, ...]):
    """The head alone, ``logits`` FP32 [batch, len(labels)] in: the step behind a TensorRT engine."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        _nodes(labels), "classifier_head",
        [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", len(labels)])], _outputs(labels, "batch"))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                                   helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
                             producer_name="tritonkit", ir_version=IR_VERSION)


def check_head(model_name: str, outputs: dict[str, np.ndarray], labels: tuple[str, ...]) -> float:
    """The head's answers against the Python postprocess step's on the same logits: labels equal, probabilities
    within ``PROBABILITY_ATOL``. Returns the largest probability difference; raises ``ParityError``."""
    from tritonkit.steps import labels as python_step

    probabilities = python_step.softmax(np.asarray(outputs[LOGITS], dtype=np.float32))
    errors = check_parity(f"{model_name} (labels in the graph)",
                          {PROBABILITIES: outputs[PROBABILITIES], LABEL: outputs[LABEL]},
                          {PROBABILITIES: probabilities, LABEL: python_step.top_labels(probabilities, list(labels))},
                          PROBABILITY_ATOL,
                          "the Python postprocess step")
    return errors[PROBABILITIES]
