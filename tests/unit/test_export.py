"""Export parity, graph checks and the up-to-date logic."""

import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

from tritonkit import paths
from tritonkit.export import GraphError, ParityError
from tritonkit.export.convert.graph import check_graph, tensor_specs
from tritonkit.export.repository.config import ServingOptions
from tritonkit.export.verify import check_parity


def _identity_graph(input_name="FEATURES", output_name="PREDICTION", batch="batch"):
    graph = helper.make_graph(
        [helper.make_node("Identity", [input_name], [output_name])],
        "g",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_parity_returns_max_error_when_outputs_agree():
    expected = {"PREDICTION": np.array([[1.0], [2.0]])}
    actual = {"PREDICTION": np.array([[1.0], [2.00001]], dtype=np.float32)}
    assert check_parity("m", actual, expected, 1e-4, "scikit-learn")["PREDICTION"] == pytest.approx(1e-5, rel=0.1)


def test_parity_raises_naming_output_row_and_tolerance_when_outputs_differ():
    expected = {"PREDICTION": np.array([[1.0], [2.0], [3.0]])}
    actual = {"PREDICTION": np.array([[1.0], [2.0], [3.5]])}
    with pytest.raises(ParityError, match=r"m: output 'PREDICTION' differs from scikit-learn by 0.5 "
                                          r"\(max abs, row 2\); the tolerance is 0.0001"):
        check_parity("m", actual, expected, 1e-4, "scikit-learn")


def test_parity_raises_when_output_is_nan():
    with pytest.raises(ParityError, match="differs"):
        check_parity("m", {"P": np.array([[np.nan]])}, {"P": np.array([[1.0]])}, 1e-4, "PyTorch")


@pytest.mark.parametrize(
    ("actual", "message"),
    [({"OTHER": np.zeros((2, 1))}, "has no output 'PREDICTION'"), ({"PREDICTION": np.zeros((2,))}, "has shape")],
)
def test_parity_raises_when_output_is_missing_or_misshapen(actual, message):
    with pytest.raises(ParityError, match=message):
        check_parity("m", actual, {"PREDICTION": np.zeros((2, 1))}, 1e-4, "PyTorch")


def test_check_graph_refuses_tensor_without_a_name():
    with pytest.raises(GraphError, match="graph tensor '308' has no meaningful name"):
        check_graph(_identity_graph(output_name="308"), "m")


def test_check_graph_refuses_invalid_graph():
    model = _identity_graph()
    model.graph.node[0].input[0] = "NOT_THERE"
    with pytest.raises(GraphError, match="m: the ONNX graph is invalid"):
        check_graph(model, "m")


def test_tensor_specs_refuse_fixed_batch_axis_for_batched_model():
    with pytest.raises(GraphError, match="needs a dynamic first axis"):
        tensor_specs(_identity_graph(batch=4).graph.input, batched=True, model_name="m")


def test_tensor_specs_drop_batch_axis_when_batched():
    (spec,) = tensor_specs(_identity_graph().graph.input, batched=True, model_name="m")
    assert (spec.name, spec.data_type, spec.dims) == ("FEATURES", "TYPE_FP32", (3,))


@pytest.mark.parametrize("options, message", [
    (dict(max_batch_size=-1), r"max_batch_size=-1 must be >= 0 \(0 disables batching\)"),
    (dict(instance_count=0), "instance_count must be >= 1"),
    (dict(max_queue_delay_us=5_000_000), r"max_queue_delay_us=5000000 must be within 0..1000000"),
    (dict(max_queue_size=-1), r"max_queue_size=-1 must be >= 0"),
])
def test_serving_options_raise_when_value_is_out_of_range(options, message):
    with pytest.raises(ValueError, match=message):
        ServingOptions(**options)


def test_export_cli_refuses_unknown_model_and_names_choices():
    done = subprocess.run([sys.executable, "-m", "tritonkit.export", "--model", "bert"], capture_output=True, text=True,
                          cwd=paths.root(), timeout=120)
    assert done.returncode == 2
    assert "invalid choice: 'bert'" in done.stderr and "diabetes_regressor" in done.stderr


def test_gpu_repository_is_completed_with_the_models_that_have_no_engine(tmp_path):
    from tritonkit.export.builtin import tensorrt

    cpu, gpu = tmp_path / "model_repository", tmp_path / "gpu_repository"
    for name in ("digit_resnet", "diabetes_regressor", "minilm_sentiment"):
        (cpu / name / "1").mkdir(parents=True)
        (cpu / name / "1" / "model.onnx").write_bytes(b"onnx")
        (cpu / name / "config.pbtxt").write_text(f'name: "{name}"\nbackend: "onnxruntime"\n')
    (gpu / "digit_resnet" / "1").mkdir(parents=True)
    (gpu / "digit_resnet" / "1" / "model.plan").write_bytes(b"engine")
    (gpu / "digit_resnet" / "config.pbtxt").write_text('platform: "tensorrt_plan"\n')
    (gpu / "minilm_sentiment" / "1").mkdir(parents=True)  # an earlier copy, its engine build failed again
    (gpu / "minilm_sentiment" / "1" / "stale.onnx").write_bytes(b"old")

    assert tensorrt.complete_repository(cpu, gpu) == ["diabetes_regressor", "minilm_sentiment"]
    assert (gpu / "digit_resnet" / "config.pbtxt").read_text() == 'platform: "tensorrt_plan"\n'  # the engine stays
    assert not (gpu / "digit_resnet" / "1" / "model.onnx").exists()
    assert (gpu / "diabetes_regressor" / "1" / "model.onnx").read_bytes() == b"onnx"
    assert sorted(p.name for p in (gpu / "minilm_sentiment" / "1").iterdir()) == ["model.onnx"]
    # every model name once: tritonserver gets gpu_repository/ and ensembles/, never model_repository/ beside them
    assert {p.parent.name for p in gpu.glob("*/config.pbtxt")} == {p.parent.name for p in cpu.glob("*/config.pbtxt")}


def test_breakdowns_are_tabled_with_a_column_per_version_and_blanks_for_what_one_lacks():
    from tritonkit.export.repository import card
    from tritonkit.export.repository.record import ExportRecord

    def record(version, breakdown):
        return ExportRecord(model="m", version=version, source="PyTorch", format="ONNX", size_bytes=1,
                            parity_max_abs_error={"y": 0.0}, tolerance=1e-4, metric_name="accuracy", metric=0.9,
                            export_s=1.0, fingerprint="f", breakdown=breakdown, breakdown_title="By category")

    lines = card._breakdowns([record(1, {"a": 0.91234, "b": 1.0}), record(2, {"a": 0.5})])
    assert lines == ["", "## By category", "", "| | `m` v1 | `m` v2 |", "|---|---|---|",
                     "| a | 0.912 | 0.500 |", "| b | 1.000 |  |"]


def test_a_breakdown_without_a_title_is_refused():
    from tritonkit.export.spec import Built

    with pytest.raises(ValueError, match="needs a breakdown_title"):
        Built(onnx_model=None, holdout={}, expected={}, metric=lambda outputs: 0.0, breakdown=lambda outputs: {})
