"""The README's "Serve your own model" section, run as written: every block in order in an empty folder (the
Python that saves the models, the `export add` commands), then a server on `my_models` and the section's requests,
whose answers must be the ones shown (numbers within the cross-CPU tolerance) and the source frameworks' own."""

from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from conftest import serving
from test_readme import CROSS_CPU_ATOL, OWN_MODELS, fenced_blocks, readme_section

pytestmark = pytest.mark.integration
SERVE = "make serve USER_REPOSITORY=my_models"


def _blocks():
    return fenced_blocks(readme_section(OWN_MODELS))


def _localize(command: str, port: int | None = None) -> str:
    command = command.replace(".venv/bin/python", sys.executable)
    return command.replace("localhost:8000", f"127.0.0.1:{port}") if port else command


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The section's Python and `export add` blocks run in order in an empty folder."""
    folder = tmp_path_factory.mktemp("own_models_readme")
    for index, (language, body) in enumerate(_blocks()):
        if language == "python":  # from a file, as a user saves it: TorchScript reads the module's source
            script = folder / f"block_{index}.py"
            script.write_text(body)
            done = subprocess.run([sys.executable, script.name], capture_output=True, text=True, timeout=300,
                                  cwd=folder)
        elif language == "bash" and "tritonkit.export add" in body:
            done = subprocess.run(["bash", "-ec", _localize(body)], capture_output=True, text=True, timeout=600,
                                  cwd=folder)
        else:
            continue
        assert done.returncode == 0, f"{body}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return folder


@pytest.fixture(scope="module")
def own_server(workdir, tmp_path_factory):
    with serving(tmp_path_factory.mktemp("own_server") / "server.log", [workdir / "my_models"]) as server:
        yield server


def test_the_section_adds_every_kind_it_shows(workdir):
    added = {path.name for path in (workdir / "my_models").iterdir() if path.is_dir()}
    assert {"iris", "scorer", "scorer_program", "scorer_onnx", "reviews", "reviews_model"} <= added
    commands = " ".join(body for language, body in _blocks() if language == "bash")
    assert SERVE in readme_section(OWN_MODELS) and "--checkpoint" in readme_section(OWN_MODELS)
    for source in ("iris.joblib", "scorer.pt ", "scorer.pt2", "scorer.onnx", "add reviews reviews"):
        assert source in commands, source


def _requests():
    blocks = _blocks()
    return [(body, next(shown for language, shown in blocks[index + 1 :] if language == "json"))
            for index, (language, body) in enumerate(blocks) if language == "bash" and "localhost:8000" in body]


def test_the_sections_requests_answer_as_shown(own_server):
    requests = _requests()
    assert len(requests) == 3
    for command, shown in requests:
        done = subprocess.run(["bash", "-c", _localize(command, own_server.settings.http_port)], capture_output=True,
                              text=True, timeout=60)
        answer, expected = json.loads(done.stdout), json.loads(shown)
        assert answer["model_name"] == expected["model_name"]
        outputs = {output["name"]: output for output in answer["outputs"]}
        assert sorted(outputs) == sorted(output["name"] for output in expected["outputs"])
        for want in expected["outputs"]:
            got = outputs[want["name"]]
            assert (got["datatype"], got["shape"]) == (want["datatype"], want["shape"])
            if got["datatype"] == "BYTES":
                assert got["data"] == want["data"]
            else:
                np.testing.assert_allclose(got["data"], want["data"], atol=CROSS_CPU_ATOL)


def test_the_sections_answers_are_the_source_frameworks(own_server, workdir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    answers = {}
    for command, _ in _requests():
        done = subprocess.run(["bash", "-c", _localize(command, own_server.settings.http_port)], capture_output=True,
                              text=True, timeout=60)
        answer = json.loads(done.stdout)
        answers[answer["model_name"]] = {output["name"]: output["data"] for output in answer["outputs"]}
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    estimator = joblib.load(workdir / "iris.joblib")
    assert answers["iris"]["label"] == estimator.predict(rows).tolist()
    np.testing.assert_allclose(np.reshape(answers["iris"]["probabilities"], (2, 3)), estimator.predict_proba(rows),
                               atol=1e-5)
    texts = ["A warm, funny and moving film.", "Two hours I will never get back."]
    tokenizer = AutoTokenizer.from_pretrained(str(workdir / "reviews"), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(workdir / "reviews"), local_files_only=True).eval()
    for row, text in enumerate(texts):
        with torch.no_grad():
            expected = torch.softmax(model(**tokenizer([text], return_tensors="pt")).logits, dim=1).numpy()[0]
        np.testing.assert_allclose(np.reshape(answers["reviews"]["PROBABILITIES"], (2, 2))[row], expected, atol=1e-4)
