"""Every committed config.pbtxt is read the way Triton reads it (its ModelConfig protobuf), and the steps' and
ensembles' configs are what the generator makes from registry.py and the committed model configs."""

import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format

from tritonkit import catalog, paths
from tritonkit.export.builtin.generate import CONFIG_FILE, OPENAPI_FILE, generated_files, sync
from tritonkit.export.builtin.registry import ENSEMBLES, MODELS, STEPS
from tritonkit.export.repository import ensembles
from tritonkit.export.repository.config import parse_pbtxt

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MODELS_ROOT = paths.model_repository()
COMMITTED = sorted(path for repository in paths.repositories() for path in repository.glob("*/config.pbtxt"))


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


@pytest.mark.parametrize("name", sorted(name for name, spec in MODELS.items() if spec.labels))
def test_classifier_config_names_its_label_file_for_class_count(name):
    config = parse_pbtxt((MODELS_ROOT / name / "config.pbtxt").read_text())
    labelled = [output for output in config.output if output.label_filename]
    assert sorted(output.name for output in labelled) == ["PROBABILITIES", "logits"]  # class_count names either
    for output in labelled:
        labels = (MODELS_ROOT / name / output.label_filename).read_text().splitlines()
        assert tuple(labels) == MODELS[name].labels and output.dims[-1] == len(labels)


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


def _configs_only(tmp_path):
    """Both repositories with their committed files but no exported graph: what the unit tier may read."""
    copies = []
    for source in paths.repositories():
        target = tmp_path / source.name
        for path in [*source.glob("*/config.pbtxt"), *source.glob("*/labels.txt"), *source.glob("*/1/README"),
                     *source.glob("*/CARD.md")]:
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        copies.append(target)
    shutil.copy2(paths.root() / OPENAPI_FILE, tmp_path / OPENAPI_FILE)
    return copies


def test_committed_step_and_ensemble_configs_are_what_the_generator_makes(tmp_path):
    models, steps = _configs_only(tmp_path)
    files = generated_files(models, steps)
    configs = {path.parent.name for path in files if path.name == CONFIG_FILE}
    assert configs == set(STEPS) | set(ENSEMBLES)  # no graph: models stand as committed
    assert models.parent / OPENAPI_FILE in files
    written, drifts = sync(files, check=True)
    assert not drifts and not written, "\n".join(map(str, drifts))


def test_a_hand_edited_ensemble_config_is_reported_as_drift(tmp_path):
    models, steps = _configs_only(tmp_path)
    edited = steps / "lstm_sentiment" / "config.pbtxt"
    edited.write_text(edited.read_text().replace("max_batch_size: 32", "max_batch_size: 64"))
    _, drifts = sync(generated_files(models, steps), check=True)
    assert [drift.path for drift in drifts] == [edited]


def test_ensemble_and_step_batch_limits_come_from_the_models_they_wire(tmp_path):
    models, steps = _configs_only(tmp_path)
    model_limits = {name: parse_pbtxt((models / name / "config.pbtxt").read_text()).max_batch_size for name in MODELS}
    for spec in ENSEMBLES.values():
        config = parse_pbtxt((steps / spec.name / "config.pbtxt").read_text())
        wired = [model_limits[s.model] for s in spec.stages if s.model in model_limits]
        assert config.max_batch_size == min(wired), spec.name
        for stage in spec.stages:
            if stage.model in STEPS:
                step = parse_pbtxt((steps / stage.model / "config.pbtxt").read_text())
                assert step.max_batch_size <= min(wired), stage.model


def test_ensemble_tensors_take_the_dtypes_and_dims_of_the_models_they_wire():
    configs = {path.parent.name: parse_pbtxt(path.read_text())
               for repository in paths.repositories() for path in repository.glob("*/config.pbtxt")}
    embedding = ensembles.ensemble_config(ENSEMBLES["text_embedding"], configs)
    (output,) = embedding.output
    (encoder_output,) = configs["minilm_encoder"].output
    assert output.name == "EMBEDDING" and list(output.dims) == list(encoder_output.dims) == [384]


def test_minilm_endpoints_serve_the_latest_version_and_the_fp32_ones_pin_version_1():
    for endpoint, model in (("text_sentiment", "minilm_sentiment"), ("text_embedding", "minilm_encoder")):
        default, fp32 = ENSEMBLES[endpoint], ENSEMBLES[f"{endpoint}_fp32"]
        assert {s.model: s.version for s in default.stages}[model] == -1  # INT8 (v2) on CPU, TensorRT v1 on GPU
        assert [(s.model, s.version) for s in fp32.stages] == [
            (s.model, 1 if s.model == model else s.version) for s in default.stages]
        assert "FP32 version 1" in fp32.summary and fp32.summary != default.summary
    with pytest.raises(ValueError, match="has no stage 'bert'"):
        ENSEMBLES["text_sentiment"].with_version("bert", 2, "x")


def test_label_files_hold_the_catalog_labels():
    for model, labels in (("minilm_sentiment", catalog.SENTIMENT_LABELS), ("lstm_sentiment_classifier",
                          catalog.SENTIMENT_LABELS), ("digit_resnet", catalog.DIGIT_LABELS)):
        assert (paths.model_repository() / model / "labels.txt").read_text().split() == list(labels), model


# issue 38: the classifiers answer their labels in their graphs; no Python step may come back behind them
CLASSIFIER_PIPELINES = {"text_sentiment": "minilm_sentiment", "text_sentiment_fp32": "minilm_sentiment",
                        "lstm_sentiment": "lstm_sentiment_classifier", "digit_classifier": "digit_resnet"}


@pytest.mark.parametrize(("endpoint", "classifier"), sorted(CLASSIFIER_PIPELINES.items()))
def test_a_classifier_pipeline_ends_at_its_model_with_one_python_step_before_it(endpoint, classifier):
    steps = [step.model_name for step in _config(paths.ensembles() / endpoint).ensemble_scheduling.step]
    assert steps[-1] == classifier and len(steps) == 2, steps
    assert _config(paths.model_repository() / classifier).backend == "onnxruntime"
    last = next(step for step in _config(paths.ensembles() / endpoint).ensemble_scheduling.step
                if step.model_name == classifier)
    assert sorted(last.output_map) == ["LABEL", "PROBABILITIES"]  # the graph's own labels, not logits
    python_steps = [step for step in steps if (paths.ensembles() / step / "1" / "model.py").is_file()]
    assert python_steps == steps[:1], python_steps  # only the pre-processing step (tokenizer or image) is Python


def test_step_spec_refuses_an_unknown_step_class():
    with pytest.raises(ValueError, match="add the class to tritonkit/steps/steps.py"):
        ensembles.StepSpec("x", "NoSuchStep", "x", inputs=(ensembles.Tensor("A", "TYPE_FP32", (1,)),),
                           outputs=(ensembles.Tensor("B", "TYPE_FP32", (1,)),))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_every_batched_model_and_step_has_a_bounded_queue(path):
    # Back-pressure: overload is refused at once (503 / UNAVAILABLE) instead of queueing without bound.
    config = parse_pbtxt(path.read_text())
    if config.platform != "ensemble":
        assert config.dynamic_batching.default_queue_policy.max_queue_size > 0, path


def _config(folder: Path):
    return parse_pbtxt((folder / "config.pbtxt").read_text())
