"""`make lint-repo`: each deliberately broken asset fails with its own message; correct repositories pass."""

import shutil
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tritonkit.export.repository.lint import lint_repositories, main

LINT_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "lint"

EXPECTED = {
    "syntax_error": "tiny/config.pbtxt: (syntax):",
    "name_mismatch": "name: is 'other'; Triton needs the folder name 'tiny'",
    "dtype_mismatch": "input 'X' data_type: is TYPE_FP64 but the graph has TYPE_FP32; set data_type: TYPE_FP32",
    "unknown_input": "input 'INPUT': is not in the graph model.onnx (graph inputs: ['X']); fix the name",
    "dims_mismatch": "input 'X' dims: are [5] but the graph has [4] (without the batch axis",
    "fixed_batch": "max_batch_size: is 8 but the graph's input 'X' has a fixed first axis [1]",
    "missing_labels": "output 'Y' label_filename: 'labels.txt' is missing",
    "not_exported": "versions: no version folder holds a model; run `make export`",
    "ensemble_unknown_model": "step[0] (nope): model 'nope' is in no repository",
    "ensemble_dtype_mismatch": "tensor 'FEATURES' is TYPE_FP64 from ensemble input but TYPE_FP32 where it is used",
    "ensemble_produced_twice": "tensor 'RESULT' is already produced by step 0 (tiny)",
    "ensemble_never_consumed": "tensor 'hidden' from step 0 (tiny) is never consumed",
    "ensemble_missing_output": "output 'RESULT': no step's output_map produces it",
    "ensemble_unknown_tensor": "tensor 'ghost' is produced by no step and is not an ensemble input",
    "scorer_unknown_model": "parameters scorer: names 'nope', which no repository holds",
    "scorer_batch_too_large": "parameters scorer_batch: is '16'; it must be 1..tiny's max_batch_size (8)",
}


def _identity(batch) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])], "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, 4])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _materialize(case: str, tmp_path: Path) -> Path:
    """Copies the asset repository and writes model.onnx for its ONNX models (never committed)."""
    repository = tmp_path / case
    shutil.copytree(LINT_ASSETS / case, repository)
    tiny = repository / "tiny"
    if case not in ("not_exported", "syntax_error"):
        (tiny / "1").mkdir()
        onnx.save(_identity(1 if case == "fixed_batch" else "batch"), tiny / "1" / "model.onnx")
    return repository


def test_every_lint_asset_has_an_expected_message():
    assert sorted(EXPECTED) == sorted(p.name for p in LINT_ASSETS.iterdir() if p.name != "good")


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_lint_reports_broken_asset_with_its_own_message(case, tmp_path):
    problems = [str(problem) for problem in lint_repositories([_materialize(case, tmp_path)])]
    assert any(EXPECTED[case] in problem for problem in problems), problems
    others = {name for name, text in EXPECTED.items() if name != case and any(text in p for p in problems)}
    assert not others, f"{case} also triggered the checks of {others}"


def test_lint_passes_correct_repository_with_ensemble(tmp_path):
    assert lint_repositories([_materialize("good", tmp_path)]) == []


def test_lint_cli_exits_1_and_prints_file_field_and_fix(tmp_path, capsys):
    repository = _materialize("dtype_mismatch", tmp_path)
    assert main([str(repository)]) == 1
    err = capsys.readouterr().err
    assert f"{repository}/tiny/config.pbtxt: input 'X' data_type:" in err and "1 problem(s)" in err
