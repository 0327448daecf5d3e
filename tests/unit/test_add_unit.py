"""The parts of `export add` that need no trained model: kind detection, samples, vector tensors, progress lines,
model cards, and the checkpoint checks of `--checkpoint`."""

import pickle
import re
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tritonkit.export import CheckpointError, SourceError
from tritonkit.export.add import detect
from tritonkit.export.add.sample import InputSpec, match_inputs, read_sample, synthesize
from tritonkit.export.builtin.generate import builtin_card
from tritonkit.export.builtin.registry import MODELS
from tritonkit.export.convert.graph import columns_for_vectors, dims_of
from tritonkit.export.progress import Progress, step
from tritonkit.export.repository import card
from tritonkit.export.verify import run_onnx


def _vector_graph(path=None):
    """y[batch] = 2 * x[batch]: tensors with no dim besides the batch."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])], "vector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10  # what onnxruntime 1.19.2 (NGC 24.10) and 1.31 both read
    if path is not None:
        onnx.save(model, path)
    return model


def test_detect_tells_every_kind_from_its_content_not_its_suffix(tmp_path):
    import joblib
    import torch

    onnx_file = _vector_graph(tmp_path / "model.bin")  # an ONNX file without the suffix
    assert onnx_file is not None and detect.detect(tmp_path / "model.bin") == detect.ONNX
    joblib.dump({"a": 1}, tmp_path / "model.onnx")  # a pickle under an ONNX name
    assert detect.detect(tmp_path / "model.onnx") == detect.SKLEARN
    joblib.dump({"a": 1}, tmp_path / "compressed.joblib", compress=3)
    assert detect.detect(tmp_path / "compressed.joblib") == detect.SKLEARN
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "script.onnx")
    assert detect.detect(tmp_path / "script.onnx") == detect.TORCHSCRIPT
    program = torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(2, 2),))
    torch.export.save(program, tmp_path / "program.pt")
    assert detect.detect(tmp_path / "program.pt") == detect.TORCH_EXPORT
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert detect.detect(tmp_path / "hf") == detect.HUGGING_FACE


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\x00\x01garbage that is no format at all", "is not a model file this tool reads"),
])
def test_detect_refuses_what_is_no_model(content, message, tmp_path):
    (tmp_path / "file").write_bytes(content)
    with pytest.raises(SourceError, match=message):
        detect.detect(tmp_path / "file")


def test_detect_refuses_a_state_dict_and_says_how_to_save_a_model(tmp_path):
    import torch

    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(SourceError, match=r"holds weights without the code.*torch\.jit\.save.*--checkpoint"):
        detect.detect(tmp_path / "weights.pt")


def test_detect_refuses_a_folder_without_config_json(tmp_path):
    with pytest.raises(SourceError, match="a folder without config.json"):
        detect.detect(tmp_path)


def test_a_single_array_is_the_input_of_a_single_input_model_whatever_its_name(tmp_path):
    np.savez(tmp_path / "one.npz", pixel_values=np.zeros((2, 3), np.float32))
    matched = match_inputs(read_sample(tmp_path / "one.npz"), [InputSpec("input", np.dtype(np.float32), (-1, 3))], "m")
    assert list(matched) == ["input"]


def test_sample_inputs_match_by_name_or_in_order_and_are_cast_without_loss(tmp_path):
    specs = [InputSpec("ids", np.dtype(np.int64), (-1, 3)), InputSpec("x", np.dtype(np.float32), (-1, 2))]
    np.savez(tmp_path / "named.npz", x=np.ones((2, 2)), ids=np.arange(6, dtype=np.int32).reshape(2, 3))
    matched = match_inputs(read_sample(tmp_path / "named.npz"), specs, "m")
    assert list(matched) == ["ids", "x"] and matched["ids"].dtype == np.int64 and matched["x"].dtype == np.float32
    np.savez(tmp_path / "ordered.npz", np.arange(6).reshape(2, 3), np.zeros((2, 2), np.float32))
    assert list(match_inputs(read_sample(tmp_path / "ordered.npz"), specs, "m")) == ["ids", "x"]


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.ones((2, 2), np.float32)}, r"do not match m's inputs \['ids', 'x'\] \(missing \['ids'\]\)"),
    ({"ids": np.ones((2, 3)), "x": np.ones((2, 2))}, r"holds floats \(float64\) but the input takes int64"),
    ({"ids": np.ones((2, 4), np.int64), "x": np.ones((2, 2))}, r"needs \[-1, 3\] \(axis 1 is 3\)"),
    ({"ids": np.ones((3, 3), np.int64), "x": np.ones((2, 2))}, "different row counts"),
])
def test_sample_that_does_not_fit_the_inputs_is_refused_naming_the_fix(arrays, message, tmp_path):
    specs = [InputSpec("ids", np.dtype(np.int64), (-1, 3)), InputSpec("x", np.dtype(np.float32), (-1, 2))]
    np.savez(tmp_path / "s.npz", **arrays)
    with pytest.raises(SourceError, match=message):
        match_inputs(read_sample(tmp_path / "s.npz"), specs, "m")


def test_sample_of_python_objects_is_refused_without_running_them(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "objects.npz", "w") as archive:
        archive.write(tmp_path / "objects.npy", "x.npy")
    with pytest.raises(SourceError, match="not Python objects"):
        read_sample(tmp_path / "objects.npz")


def test_synthesized_rows_are_near_the_sample_and_ids_stay_values_the_sample_has():
    rng = np.random.default_rng(1)
    floats = rng.normal(size=(10, 3)).astype(np.float32)
    ids = rng.integers(100, 200, size=(10, 4))
    made = synthesize({"x": floats, "ids": ids})
    assert len(made["x"]) == len(made["ids"]) == 30
    np.testing.assert_array_equal(made["x"][:10], floats)
    assert not np.isin(made["x"][10:], floats).all()  # new rows, not copies
    assert np.abs(made["x"][10:]).max() < np.abs(floats).max() + 1.0
    for position in range(4):
        assert set(made["ids"][:, position]) <= set(ids[:, position])


def test_vector_tensors_become_columns_and_the_graph_still_answers():
    model = _vector_graph()
    assert columns_for_vectors(model) == (["x"], ["y"])
    onnx.checker.check_model(model, full_check=True)
    assert dims_of(model.graph.input[0]) == [-1, 1] and dims_of(model.graph.output[0]) == [-1, 1]
    out = run_onnx(model, {"x": np.array([[1.0], [2.5]], np.float32)})
    np.testing.assert_array_equal(out["y"], [[2.0], [5.0]])


def test_progress_prints_where_it_is_and_the_time_left(capsys):
    progress = Progress("training", 4, "epochs", every_s=0)
    for _ in range(2):
        progress.advance()
    progress.advance(0, note="validation accuracy 0.9")
    progress.finish(note="early stop")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip() == "training: 4 epochs..."
    assert re.match(r"\s+training: 1/4 epochs, \d+ s so far, about \d+ s left$", lines[1])
    assert lines[3].endswith("; validation accuracy 0.9")
    assert "stopped after 2 of 4 epochs" in lines[4] and lines[4].endswith("; early stop")
    with step("converting"):
        pass
    assert capsys.readouterr().out.strip() == "converting..."


def test_every_built_in_model_card_has_its_use_limits_and_license():
    for spec in MODELS.values():
        text = builtin_card(spec)
        assert card.missing_sections(text) == [], spec.name
        assert "THIRD_PARTY_NOTICES.md" in text or "Apache-2.0" in text, spec.name


def test_a_card_without_sections_marks_each_as_missing_with_the_fix():
    text = card.model_card("m", "A model.", [("source", "ONNX")], {"Intended use": "Sorting."}, "Pass --card.")
    assert card.missing_sections(text) == ["Limitations", "License"]
    assert "**Missing.** Pass --card." in text and "Sorting." in text


def test_checkpoint_of_the_wrong_shape_is_refused_naming_the_first_mismatched_tensor():
    import torch

    from tritonkit.export.builtin.checkpoint import load_state
    from tritonkit.export.builtin.tabular import cancer_module

    module = cancer_module(np.zeros(30), np.ones(30))
    state = {name: tensor.clone() for name, tensor in module.state_dict().items()}
    state["body.0.weight"] = torch.zeros(16, 29)
    with pytest.raises(CheckpointError, match=r"checkpoint tensor 'body.0.weight' has shape \[16, 29\], the "
                                              r"architecture needs \[16, 30\]"):
        load_state(cancer_module(np.zeros(30), np.ones(30)), state, "cancer_classifier")
    del state["body.0.weight"]
    with pytest.raises(CheckpointError, match=r"has no tensor 'body.0.weight' \(shape \[16, 30\]\)"):
        load_state(cancer_module(np.zeros(30), np.ones(30)), state, "cancer_classifier")


def test_checkpoint_is_refused_for_a_pretrained_model_and_for_a_file_that_is_no_state_dict(tmp_path):
    from tritonkit.export.builtin.checkpoint import loader

    with pytest.raises(CheckpointError, match="minilm_encoder takes no --checkpoint"):
        loader(MODELS["minilm_encoder"], tmp_path / "x.pt")
    (tmp_path / "list.pt").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError, match=r"is not a PyTorch state_dict that torch.load reads with "
                                              r"weights_only=True|holds a list, not a state_dict"):
        loader(MODELS["cancer_classifier"], tmp_path / "list.pt")
