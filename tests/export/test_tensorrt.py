"""The TensorRT path: what runs everywhere (configs, profiles, the refusal) and what needs a GPU."""

import subprocess
import sys

import onnx
import pytest

from tritonkit import paths
from tritonkit.export.builtin import tensorrt
from tritonkit.export.builtin.registry import MODELS
from tritonkit.export.convert import onnx2trt
from tritonkit.export.repository.config import parse_pbtxt, to_pbtxt


@pytest.mark.skipif(not onnx2trt.missing_requirements(), reason="this host can build engines")
def test_tensorrt_export_stops_with_what_is_missing():
    done = subprocess.run([sys.executable, "-m", "tritonkit.export", "--tensorrt"], capture_output=True, text=True,
                          cwd=paths.root(), timeout=120)
    assert done.returncode == 2
    assert "TensorRT export cannot run here:" in done.stderr
    assert any(reason.split(" (")[0] in done.stderr for reason in onnx2trt.missing_requirements())


def test_tensorrt_config_is_a_gpu_plan_that_triton_parses(exported_repository):
    spec = MODELS["minilm_sentiment"]
    graph = onnx.load(exported_repository / spec.name / "1" / "model.onnx")
    config = parse_pbtxt(to_pbtxt(tensorrt.tensorrt_config(spec.name, graph, spec.serving, spec.labels)))
    assert config.platform == "tensorrt_plan" and not config.backend and not config.parameters
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert [tensor.name for tensor in config.input] == ["input_ids", "attention_mask"]


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
    assert (tmp_path / name / "1" / "model.plan").stat().st_size > 0
