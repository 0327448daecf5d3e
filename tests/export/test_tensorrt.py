"""The TensorRT path: what runs everywhere (configs, profiles, the refusal) and what needs a GPU."""

import subprocess
import sys

import numpy as np
import onnx
import pytest

from tritonkit import paths
from tritonkit.export.builtin import tensorrt
from tritonkit.export.builtin.registry import MODELS
from tritonkit.export.convert import head, onnx2trt
from tritonkit.export.repository.config import parse_pbtxt, to_pbtxt
from tritonkit.export.verify import run_onnx
from tritonkit.steps import labels as python_step


@pytest.mark.skipif(not onnx2trt.missing_requirements(), reason="this host can build engines")
def test_tensorrt_export_stops_with_what_is_missing():
    done = subprocess.run([sys.executable, "-m", "tritonkit.export", "--tensorrt"], capture_output=True, text=True,
                          cwd=paths.root(), timeout=120)
    assert done.returncode == 2
    assert "TensorRT export cannot run here:" in done.stderr
    assert any(reason.split(" (")[0] in done.stderr for reason in onnx2trt.missing_requirements())


def test_tensorrt_config_is_a_gpu_plan_that_triton_parses(exported_repository):
    spec = MODELS["minilm_sentiment"]
    graph = head.without_head(onnx.load(exported_repository / spec.name / "1" / "model.onnx"))
    config = parse_pbtxt(to_pbtxt(tensorrt.tensorrt_config(spec.name, graph, spec.serving, spec.labels)))
    assert config.platform == "tensorrt_plan" and not config.backend and not config.parameters
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert [tensor.name for tensor in config.input] == ["input_ids", "attention_mask"]
    assert [tensor.name for tensor in config.output] == ["logits"]  # no string output: an engine cannot hold one


@pytest.mark.parametrize("name", ["minilm_sentiment", "digit_resnet"])
def test_a_headed_classifier_on_a_gpu_host_is_its_engine_then_its_head(name, exported_repository, tmp_path):
    """What runs without a GPU: the cut graph (the engine's source) then the head alone answer what the CPU
    graph answers, and the GPU repository wires them as an ensemble of the model's own name."""
    spec = MODELS[name]
    served = onnx.load(exported_repository / name / "1" / "model.onnx")
    cut = head.without_head(served)
    engine = tensorrt.tensorrt_config(name + tensorrt.ENGINE, cut, spec.serving, spec.labels)
    tensorrt.write_head(spec, engine, tmp_path)
    feed = onnx2trt.sample_inputs(cut)
    logits = run_onnx(cut, feed)["logits"]
    split = run_onnx(onnx.load(tmp_path / (name + tensorrt.HEAD) / "1" / "model.onnx"), {"logits": logits})
    whole = run_onnx(served, feed)
    assert list(split["LABEL"].reshape(-1)) == list(whole["LABEL"].reshape(-1)) == [
        label.decode() for label in python_step.top_labels(python_step.softmax(logits), list(spec.labels))[:, 0]]
    np.testing.assert_allclose(split["PROBABILITIES"], python_step.softmax(logits), atol=1e-6)
    ensemble = parse_pbtxt((tmp_path / name / "config.pbtxt").read_text())
    assert ensemble.platform == "ensemble" and (tmp_path / name / "1").is_dir()
    assert [step.model_name for step in ensemble.ensemble_scheduling.step] == [name + tensorrt.ENGINE,
                                                                               name + tensorrt.HEAD]
    assert sorted(tensor.name for tensor in ensemble.output) == ["LABEL", "PROBABILITIES"]
    assert [tensor.name for tensor in ensemble.input] == [tensor.name for tensor in engine.input]
    head_config = parse_pbtxt((tmp_path / (name + tensorrt.HEAD) / "config.pbtxt").read_text())
    assert head_config.backend == "onnxruntime" and head_config.instance_group[0].kind == head_config.instance_group[
        0].KIND_CPU
    # the repository's completion leaves the ensemble alone once the engine is there (a stand-in file here)
    (tmp_path / (name + tensorrt.ENGINE) / "1").mkdir(parents=True)
    (tmp_path / (name + tensorrt.ENGINE) / "1" / "model.plan").write_bytes(b"engine")
    copied = tensorrt.complete_repository(exported_repository, tmp_path)
    assert name not in copied and "diabetes_regressor" in copied
    assert parse_pbtxt((tmp_path / name / "config.pbtxt").read_text()).platform == "ensemble"


def test_profiles_cover_batch_and_sequence_ranges(exported_repository):
    graph = onnx.load(exported_repository / "minilm_encoder" / "1" / "model.onnx")
    shapes = onnx2trt.profile_shapes(graph, max_batch_size=32)
    assert shapes["input_ids"] == ((1, 1), (8, 32), (32, 128))
    digits = onnx.load(exported_repository / "digit_resnet" / "1" / "model.onnx")
    assert onnx2trt.profile_shapes(digits, 64)["pixel_values"] == ((1, 1, 8, 8), (8, 1, 8, 8), (64, 1, 8, 8))


def test_sample_inputs_fit_the_graph(exported_repository):
    graph = onnx.load(exported_repository / "minilm_sentiment" / "1" / "model.onnx")
    feed = onnx2trt.sample_inputs(graph)
    assert feed["input_ids"].shape == (4, 32) and feed["attention_mask"].min() == 1


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(name for name, spec in MODELS.items() if spec.tensorrt))
def test_tensorrt_engine_matches_onnx_runtime(name, exported_repository, tmp_path):
    errors = tensorrt.export_engine(MODELS[name], exported_repository, tmp_path)
    assert max(errors.values()) <= MODELS[name].fp16_atol
    folder = name + tensorrt.ENGINE if MODELS[name].labels else name
    assert (tmp_path / folder / "1" / "model.plan").stat().st_size > 0
