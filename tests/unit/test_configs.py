"""Every committed config.pbtxt is read the way Triton reads it: through its ModelConfig protobuf."""

from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format

from export.config import model_config, parse_pbtxt, to_pbtxt
from export.registry import MODELS
from server.settings import DEFAULT_REPOSITORIES

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MODELS_ROOT = DEFAULT_REPOSITORIES[0]
COMMITTED = sorted(path for repository in DEFAULT_REPOSITORIES for path in repository.glob("*/config.pbtxt"))


def test_repository_has_configs():
    assert {path.parent.name for path in COMMITTED} >= set(MODELS)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_config_parses_with_model_config(path):
    config = parse_pbtxt(path.read_text())
    assert config.name == path.parent.name, f"{path}: name {config.name!r} must equal its folder name"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_onnx_config_is_batchable_with_dynamic_batching(path):
    config = parse_pbtxt(path.read_text())
    if config.backend == "onnxruntime":
        assert config.max_batch_size > 0 and config.HasField("dynamic_batching")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_config_is_what_export_generates_from_the_graph(name, exported_repository):
    spec = MODELS[name]
    graph = onnx.load(exported_repository / name / "1" / "model.onnx")
    generated = to_pbtxt(model_config(name, graph, spec.serving, labels=spec.labels, versions=spec.versions))
    assert (exported_repository / name / "config.pbtxt").read_text() == generated


@pytest.mark.parametrize("name", sorted(name for name, spec in MODELS.items() if spec.labels))
def test_classifier_config_names_its_label_file_for_class_count(name):
    config = parse_pbtxt((MODELS_ROOT / name / "config.pbtxt").read_text())
    (labelled,) = [output for output in config.output if output.label_filename]
    labels = (MODELS_ROOT / name / labelled.label_filename).read_text().splitlines()
    assert tuple(labels) == MODELS[name].labels and labelled.dims[-1] == len(labels)


@pytest.mark.parametrize("name", sorted(name for name, spec in MODELS.items() if len(spec.versions) > 1))
def test_quantized_models_serve_both_versions(name):
    config = parse_pbtxt((MODELS_ROOT / name / "config.pbtxt").read_text())
    assert list(config.version_policy.specific.versions) == [1, 2]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_warms_up_with_a_batch_of_one(name):
    config = parse_pbtxt((MODELS_ROOT / name / "config.pbtxt").read_text())
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 1 and set(warmup.inputs) == {tensor.name for tensor in config.input}


@pytest.mark.parametrize(
    ("asset", "message"),
    [("unknown_field.pbtxt", "has no field named \"max_batch\""), ("wrong_type.pbtxt", "data_type")],
)
def test_broken_config_fails_to_parse_with_named_field(asset, message):
    with pytest.raises(text_format.ParseError, match=message):
        parse_pbtxt((ASSETS / "broken_configs" / asset).read_text())
