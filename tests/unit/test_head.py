"""The classifier head in the graph (export/convert/head.py) against the Python postprocess step it replaced."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tritonkit.export.convert import head
from tritonkit.export.convert.graph import check_graph
from tritonkit.export.verify import ParityError, run_onnx
from tritonkit.steps import labels as python_step

LABELS = ("cat", "dog", "fish")


def classifier(classes: int = len(LABELS)) -> onnx.ModelProto:
    """x FP32 [batch, 4] -> logits [batch, classes] through one MatMul with fixed weights."""
    weights = np.random.default_rng(0).normal(size=(4, classes)).astype(np.float32) * 5
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"], name="dense")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=[numpy_helper.from_array(weights, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=head.IR_VERSION)


def rows(count: int = 64) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).normal(size=(count, 4)).astype(np.float32)}


def test_head_answers_what_the_python_step_answers():
    headed = head.with_head(classifier(), LABELS)
    check_graph(headed, "tiny")
    outputs = run_onnx(headed, rows())
    probabilities = python_step.softmax(outputs["logits"])
    expected = [label.decode() for label in python_step.top_labels(probabilities, list(LABELS))[:, 0]]
    assert outputs["LABEL"].shape == (64, 1) and list(outputs["LABEL"][:, 0]) == expected
    assert len(set(expected)) == len(LABELS)  # every class is answered somewhere: the mapping is really checked
    assert np.abs(outputs["PROBABILITIES"] - probabilities).max() < head.PROBABILITY_ATOL
    assert head.check_head("tiny", outputs, LABELS) < head.PROBABILITY_ATOL
    assert [value.name for value in headed.graph.output] == ["logits", "LABEL", "PROBABILITIES"]


def test_check_head_refuses_a_label_out_of_order():
    outputs = run_onnx(head.with_head(classifier(), LABELS), rows())
    with pytest.raises(ParityError, match="LABEL.*labels must be equal"):
        head.check_head("tiny", outputs, ("dog", "cat", "fish"))


def test_without_head_is_the_graph_it_was_and_the_head_alone_completes_it():
    plain = classifier()
    headed = head.with_head(plain, LABELS)
    cut = head.without_head(headed)
    assert not head.has_head(cut) and head.has_head(headed)
    assert [value.name for value in cut.graph.output] == ["logits"]
    assert all(opset.domain != head.ML_DOMAIN for opset in cut.opset_import)  # nothing TensorRT cannot parse
    assert cut.SerializeToString() == plain.SerializeToString()
    # the GPU repository's ensemble: the engine (here the cut graph in ORT) then the head alone
    logits = run_onnx(cut, rows())["logits"]
    split = run_onnx(head.head_model(LABELS), {"logits": logits})
    whole = run_onnx(headed, rows())
    assert list(split["LABEL"][:, 0]) == list(whole["LABEL"][:, 0])
    assert np.array_equal(split["PROBABILITIES"], whole["PROBABILITIES"])


def test_with_head_refuses_a_graph_without_logits_or_a_wrong_class_count():
    with pytest.raises(ValueError, match=r"must be \[batch, 2\]"):
        head.with_head(classifier(3), ("a", "b"))
    with pytest.raises(ValueError, match="once"):
        head.with_head(head.with_head(classifier(), LABELS), LABELS)
