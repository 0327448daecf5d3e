"""`python -m tritonkit.export add`: every source kind from models the tests make themselves, checked here against
the source framework independently of the checks `add` itself runs; refusals leave the repository untouched."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tritonkit.export.__main__ import main as export_main
from tritonkit.export.repository.card import CARD_NAME, MODEL_CARD_NAME, missing_sections
from tritonkit.export.repository.config import parse_pbtxt
from tritonkit.export.repository.lint import lint_repositories

RNG = np.random.default_rng(42)  # fresh rows: not the sample's, not the ones `add` synthesized


def add(*args) -> int:
    return export_main(["add", *map(str, args)])


def snapshot(repository) -> dict[str, bytes]:
    if not repository.exists():
        return {}
    return {str(path.relative_to(repository)): path.read_bytes() for path in sorted(repository.rglob("*"))
            if path.is_file()}


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def config_of(repository, name):
    return parse_pbtxt((repository / name / "config.pbtxt").read_text())


def record_of(repository, name, version=1):
    return json.loads((repository / name / str(version) / "export.json").read_text())


def torch_answers(module, features, scale):
    import torch

    with torch.no_grad():
        logits, total = module(torch.from_numpy(features), torch.from_numpy(scale))
    return logits.numpy(), total.numpy()


def fresh_torch_rows(rows=5):
    return (RNG.normal(size=(rows, 4)).astype(np.float32), RNG.uniform(0.5, 2, size=(rows, 1)).astype(np.float32))


@pytest.fixture
def repository(tmp_path):
    return tmp_path / "my_models"


@pytest.mark.parametrize("kind", ["torchscript", "torch_export", "onnx"])
def test_add_serves_a_torch_model_with_two_inputs_and_outputs_batched_as_pytorch_answers(kind, own_models,
                                                                                          repository):
    import torch

    source = getattr(own_models, kind)
    assert add("two", source, "--repository", repository, "--sample", own_models.torch_sample) == 0
    config = config_of(repository, "two")
    assert config.max_batch_size == 32 and config.dynamic_batching.default_queue_policy.max_queue_size == 32
    assert [t.name for t in config.input] == ["features", "scale"]
    assert len(config.output) == 2 and [list(t.dims) for t in config.output] == [[3], [1]]
    assert lint_repositories([repository]) == []
    module = torch.jit.load(str(own_models.torchscript)).eval()  # every kind was made from this module
    features, scale = fresh_torch_rows()
    got = session(repository / "two" / "1" / "model.onnx").run(None, {"features": features, "scale": scale})
    for served, expected in zip(got, torch_answers(module, features, scale), strict=True):
        np.testing.assert_allclose(served, expected, atol=1e-5)
    record = record_of(repository, "two")
    assert record["source_sha256"] and max(record["parity_max_abs_error"].values()) <= 1e-4
    assert record["metric"] >= 24  # the sample's 8 rows and 16 made around them


def test_add_serves_a_program_with_a_fixed_batch_unbatched(own_models, repository):
    import torch

    assert add("fixed", own_models.torch_fixed, "--repository", repository, "--sample",
               own_models.torch_fixed_sample) == 0
    config = config_of(repository, "fixed")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [2, 3]
    program = torch.export.load(str(own_models.torch_fixed))
    rows = RNG.normal(size=(2, 3)).astype(np.float32)
    (got,) = session(repository / "fixed" / "1" / "model.onnx").run(None, {"x": rows})
    np.testing.assert_allclose(got, program.module()(torch.from_numpy(rows)).detach().numpy(), atol=1e-5)
    assert lint_repositories([repository]) == []


def test_add_serves_an_onnx_file_with_a_fixed_batch_without_a_sample(own_models, repository):
    assert add("fixed_onnx", own_models.onnx_fixed, "--repository", repository) == 0
    config = config_of(repository, "fixed_onnx")
    assert config.max_batch_size == 0 and list(config.input[0].dims) == [1, 4]
    assert record_of(repository, "fixed_onnx")["metric"] >= 8
    assert lint_repositories([repository]) == []


def test_add_serves_a_sklearn_classifier_with_labels_and_probabilities_as_plain_tensors(own_models, repository):
    assert add("iris", own_models.sklearn, "--repository", repository, "--sample", own_models.sklearn_sample) == 0
    config = config_of(repository, "iris")
    assert {t.name: list(t.dims) for t in config.output} == {"label": [1], "probabilities": [3]}
    graph = onnx.load(repository / "iris" / "1" / "model.onnx")
    assert not any(node.op_type == "ZipMap" for node in graph.graph.node)
    estimator = joblib.load(own_models.sklearn)
    rows = (np.array([[5.0, 3.4, 1.5, 0.2], [6.1, 2.8, 4.7, 1.2], [7.7, 3.0, 6.1, 2.3]])
            + RNG.normal(scale=0.05, size=(3, 4))).astype(np.float32)
    label, probabilities = session(repository / "iris" / "1" / "model.onnx").run(["label", "probabilities"],
                                                                              {"features": rows})
    assert label[:, 0].tolist() == estimator.predict(rows).tolist()
    np.testing.assert_allclose(probabilities, estimator.predict_proba(rows), atol=1e-5)


def test_add_reads_a_pickled_regressor_and_an_unnamed_sample_in_order(own_models, repository):
    assert add("ridge", own_models.sklearn_regressor, "--repository", repository, "--sample",
               own_models.sklearn_regressor_sample) == 0
    config = config_of(repository, "ridge")
    assert [(t.name, list(t.dims)) for t in config.input] == [("features", [3])]
    assert config.input[0].data_type == 12  # TYPE_FP64 (model_config.proto): the sample's dtype
    assert [t.name for t in config.output] == ["prediction"]


@pytest.mark.parametrize("folder, inputs", [("distilbert", ["input_ids", "attention_mask"]),
                                            ("bert", ["input_ids", "token_type_ids", "attention_mask"])])
def test_add_serves_a_hugging_face_classifier_as_a_text_endpoint(folder, inputs, own_models, repository):
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = getattr(own_models, folder)
    assert add("reviews", source, "--repository", repository, "--sample", own_models.text_sample) == 0
    assert sorted(p.name for p in repository.iterdir() if p.is_dir()) == [
        "reviews", "reviews_model", "reviews_tokenizer"]  # the labels come from the model's graph: no Python step
    assert lint_repositories([repository]) == []
    endpoint = config_of(repository, "reviews")
    assert endpoint.platform == "ensemble"
    assert [t.name for t in endpoint.input] == ["TEXT"]
    assert sorted(t.name for t in endpoint.output) == ["LABEL", "PROBABILITIES"]
    assert [t.name for t in config_of(repository, "reviews_model").input] == inputs
    classifier = AutoModelForSequenceClassification.from_pretrained(str(source), local_files_only=True).eval()
    labels = (repository / "reviews_model" / "labels.txt").read_text().split()
    assert labels == [classifier.config.id2label[i] for i in range(classifier.config.num_labels)]
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    served = Tokenizer.from_file(str(repository / "reviews_tokenizer" / "1" / "tokenizer.json"))
    texts = ["An hour I will not get back.", "Brilliant, moving and funny: naïve café charm."]
    for text in texts:
        assert served.encode(text).ids == tokenizer(text)["input_ids"]
    feed = {name: array.astype(np.int64) for name, array in tokenizer(texts, padding=True, return_tensors="np").items()
            if name in inputs}
    logits, label, probabilities = session(repository / "reviews_model" / "1" / "model.onnx").run(
        ["logits", "LABEL", "PROBABILITIES"], feed)
    with torch.no_grad():
        expected = classifier(**{name: torch.from_numpy(array) for name, array in feed.items()}).logits.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    torch_probabilities = torch.softmax(torch.from_numpy(expected), dim=-1).numpy()
    np.testing.assert_allclose(probabilities, torch_probabilities, atol=1e-4)
    assert list(label[:, 0]) == [classifier.config.id2label[int(i)] for i in torch_probabilities.argmax(axis=-1)]
    step = config_of(repository, "reviews_tokenizer")
    assert step.parameters["allow_empty"].string_value == "true"
    assert int(step.parameters["max_tokens"].string_value) == min(512, classifier.config.max_position_embeddings)


def test_add_with_int8_writes_a_second_version_that_agrees_with_fp32(own_models, repository):
    assert add("two", own_models.torchscript, "--repository", repository, "--sample", own_models.torch_sample,
               "--int8") == 0
    config = config_of(repository, "two")
    assert list(config.version_policy.specific.versions) == [1, 2]
    features, scale = fresh_torch_rows(32)
    fp32, int8 = (session(repository / "two" / str(v) / "model.onnx").run(None, {"features": features,
                                                                                 "scale": scale})
                  for v in (1, 2))
    agreement = np.mean(fp32[0].argmax(axis=1) == int8[0].argmax(axis=1))
    assert agreement >= 0.9, agreement  # independent rows: the bar `add` applied on its own rows was 0.98
    record = record_of(repository, "two", 2)
    assert "INT8" in record["format"] and record["agreement"]
    assert record["size_bytes"] != record_of(repository, "two")["size_bytes"]
    assert "INT8 agreement" in (repository / CARD_NAME).read_text()


def test_add_refuses_int8_below_its_bar_with_the_figure_and_writes_nothing(own_models, repository, monkeypatch,
                                                                            capsys):
    from tritonkit.export.add import int8

    assert add("mlp", own_models.sklearn_mlp, "--repository", repository, "--sample", own_models.sklearn_sample) == 0
    before = snapshot(repository)
    monkeypatch.setattr(int8, "MIN_LABEL_AGREEMENT", 1.01)  # a bar no version can reach
    assert add("mlp", own_models.sklearn_mlp, "--repository", repository, "--sample", own_models.sklearn_sample,
               "--int8", "--version", "2") == 1
    assert re.search(r"mlp v3 \(INT8\) is refused, nothing was written: label: labels agree on [01]\.\d+ of rows, "
                     r"below 1.01.*\(all: label labels agree", capsys.readouterr().err)
    assert snapshot(repository) == before


def test_add_refuses_a_graph_whose_weights_were_tampered_with_and_writes_nothing(own_models, repository,
                                                                                monkeypatch, capsys):
    from onnx import numpy_helper

    from tritonkit.export.convert import torch2onnx

    convert = torch2onnx.convert_torchscript

    def tampered(*args, **kwargs):
        graph = convert(*args, **kwargs)
        weight = max(graph.graph.initializer, key=lambda tensor: np.prod(tensor.dims))
        array = numpy_helper.to_array(weight).copy()
        array.flat[0] += 0.5
        weight.CopyFrom(numpy_helper.from_array(array, weight.name))
        return graph

    assert add("keep", own_models.onnx, "--repository", repository, "--sample", own_models.torch_sample) == 0
    before = snapshot(repository)
    monkeypatch.setattr(torch2onnx, "convert_torchscript", tampered)
    assert add("two", own_models.torchscript, "--repository", repository, "--sample", own_models.torch_sample) == 1
    assert "differs from TorchScript by" in capsys.readouterr().err
    assert snapshot(repository) == before


def test_add_puts_a_version_beside_the_existing_ones_and_refuses_another_signature(own_models, repository, capsys):
    assert add("two", own_models.onnx, "--repository", repository, "--sample", own_models.torch_sample) == 0
    assert add("two", own_models.onnx, "--repository", repository, "--sample", own_models.torch_sample) == 2
    assert "exists (versions [1]); pass --version 2" in capsys.readouterr().err
    assert add("two", own_models.torchscript, "--repository", repository, "--sample", own_models.torch_sample,
               "--version", "2", "--output-names", "logits,total") == 0
    assert list(config_of(repository, "two").version_policy.specific.versions) == [1, 2]
    before = snapshot(repository)
    assert add("two", own_models.sklearn, "--repository", repository, "--sample", own_models.sklearn_sample,
               "--version", "3") == 1
    assert "differ from the served versions'" in capsys.readouterr().err
    assert snapshot(repository) == before
    assert add("two", own_models.sklearn, "--repository", repository, "--sample", own_models.sklearn_sample,
               "--force") == 0
    assert [t.name for t in config_of(repository, "two").output] == ["label", "probabilities"]
    assert not (repository / "two" / "2").exists()


def test_add_writes_a_card_from_the_users_file_and_marks_what_it_lacks(own_models, repository, tmp_path):
    card = tmp_path / "card.md"
    card.write_text("## Intended use\n\nSorting irises.\n\n## License\n\nCC0-1.0\n")
    assert add("iris", own_models.sklearn, "--repository", repository, "--sample", own_models.sklearn_sample,
               "--card", card) == 0
    text = (repository / "iris" / MODEL_CARD_NAME).read_text()
    assert "Sorting irises." in text and "CC0-1.0" in text
    assert missing_sections(text) == ["Limitations"]
    record = record_of(repository, "iris")
    assert record["source_sha256"] in text
    row = next(line for line in (repository / CARD_NAME).read_text().splitlines() if line.startswith("| `iris`"))
    assert "scikit-learn" in row and record["source_sha256"][:16] in row and "KiB" in row


def _base_model(folder):
    """A Hugging Face folder without a classification head (a base encoder)."""
    from transformers import DistilBertConfig, DistilBertModel

    DistilBertModel(DistilBertConfig(vocab_size=100, dim=16, hidden_dim=32, n_layers=1, n_heads=2)).save_pretrained(
        folder)
    return folder


def _custom_op_onnx(path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    model.ir_version = 10  # readable by ONNX Runtime: the operator is what it cannot run
    onnx.save(model, path)
    return path


BAD_INPUTS = {
    # case: (make the source from own_models and tmp_path, extra arguments, what the message says)
    "corrupt file": (lambda m, t: _write(t / "model.onnx", b"\x08\x07garbage" * 40), [],
                     "is not a model file this tool reads"),
    "truncated onnx": (lambda m, t: _write(t / "cut.onnx", m.onnx.read_bytes()[:200]), [],
                       "is not a model file this tool reads"),
    "state_dict": (lambda m, t: _state_dict(t / "weights.pt"), ["--sample", "torch_sample"],
                   "holds weights without the code of its architecture"),
    "missing sample": (lambda m, t: m.torchscript, [], "needs --sample FILE.npz"),
    "sample of the wrong shape": (lambda m, t: m.torchscript, ["--sample", "sklearn_sample"],
                                  "do not match the TorchScript model's forward()'s inputs"),
    "sample that does not fit": (lambda m, t: m.onnx, ["--sample", "wide_sample"], "needs [-1, 4] (axis 1 is 4)"),
    "folder without a tokenizer": (lambda m, t: _without_tokenizer(m.distilbert, t / "no_tokenizer"), [],
                                   "has no tokenizer"),
    "folder with a base model": (lambda m, t: _base_model(t / "base"), [], "not a sequence classifier"),
    "operator ORT cannot run": (lambda m, t: _custom_op_onnx(t / "custom.onnx"), [],
                                "ONNX Runtime cannot run this graph: "),
    "not a sample file": (lambda m, t: m.onnx, ["--sample", "not_npz"], "is not a .npz file"),
}


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _state_dict(path):
    import torch

    torch.save({"weight": torch.zeros(2, 2)}, path)
    return path


def _without_tokenizer(source, target):
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("tokenizer*", "vocab*", "special_tokens*"))
    return target


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_add_refuses_bad_input_in_one_line_naming_the_problem_and_writes_nothing(case, own_models, tmp_path,
                                                                                  repository, capsys):
    make, extra, message = BAD_INPUTS[case]
    samples = {"torch_sample": own_models.torch_sample, "sklearn_sample": own_models.sklearn_sample,
               "wide_sample": _wide_sample(tmp_path), "not_npz": _write(tmp_path / "rows.npz", b"1,2,3\n")}
    assert add("keep", own_models.onnx, "--repository", repository, "--sample", own_models.torch_sample) == 0
    before = snapshot(repository)
    capsys.readouterr()
    arguments = [samples.get(item, item) for item in extra]
    assert add("mine", make(own_models, tmp_path), "--repository", repository, *arguments) != 0
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert snapshot(repository) == before


def _wide_sample(tmp_path):
    path = tmp_path / "wide.npz"
    np.savez(path, features=np.zeros((2, 7), np.float32), scale=np.ones((2, 1), np.float32))
    return path


@pytest.mark.parametrize("name", ["9lives", "has space", "../escape", "x" * 64])
def test_add_refuses_an_invalid_model_name(name, own_models, repository, capsys):
    assert add(name, own_models.onnx, "--repository", repository) == 2
    assert "is not valid: start with a letter" in capsys.readouterr().err
    assert not repository.exists()


def test_add_from_the_command_line_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    broken = _write(tmp_path / "broken.onnx", b"not a model at all")
    done = subprocess.run([sys.executable, "-m", "tritonkit.export", "add", "mine", str(broken), "--repository",
                           str(tmp_path / "repo")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "repo").exists()
    help_text = subprocess.run([sys.executable, "-m", "tritonkit.export", "add", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    for option in ("--repository", "--sample", "--version", "--max-batch-size", "--atol", "--int8", "--force",
                   "--card", "RUNS ITS CODE"):
        assert option in help_text
