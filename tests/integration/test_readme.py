"""The README's commands, run exactly as written (ports and the interpreter path aside) against the real server."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tritonkit import paths
from tritonkit.export.builtin import datasets, tabular

pytestmark = pytest.mark.integration

# The trained models' probabilities differ a little between CPUs (seeded training, but float reductions differ
# between kernels: the INT8 text_sentiment's answer moved by 0.005 between the Intel Xeon the README was written on
# and an AMD EPYC). Labels, shapes and names must match exactly; numbers within this.
CROSS_CPU_ATOL = 0.02
NUMBER = re.compile(r"-?\d+\.\d+")


OWN_MODELS = "## Serve your own model"  # its blocks run against a server of their own (test_readme_own_models.py)


def readme_section(title: str) -> str:
    """The README's text under ``title`` up to the next ``## `` heading."""
    text = (paths.root() / "README.md").read_text()
    return text.split(title + "\n", 1)[1].split("\n## ", 1)[0]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.DOTALL)


def readme_blocks() -> list[tuple[str, str]]:
    """(language, body) of every fenced block outside the own-model section, in order."""
    text = (paths.root() / "README.md").read_text()
    return fenced_blocks(text.replace(readme_section(OWN_MODELS), ""))


def _example_pairs(language: str, answer_language: str):
    """Each example block of ``language`` that talks to the server, with the answer block shown after it."""
    blocks = readme_blocks()
    pairs = []
    for index, (lang, body) in enumerate(blocks):
        if lang == language and ("localhost:8000" in body or "localhost:8001" in body):
            answer = next((b for lang2, b in blocks[index + 1 :] if lang2 == answer_language), None)
            pairs.append((body, answer))
    return pairs


def _localize(command: str, server) -> str:
    return (command.replace("localhost:8000", f"127.0.0.1:{server.settings.http_port}")
                   .replace("localhost:8001", f"127.0.0.1:{server.settings.grpc_port}")
                   .replace(".venv/bin/python", sys.executable))


def _run_bash(command: str, cwd) -> str:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")  # the digit example writes digit.png here, the Python one reads it


def test_readme_has_a_curl_example_per_endpoint():
    commands = " ".join(body for body, _ in _example_pairs("bash", "json"))
    for endpoint in ("diabetes_regressor", "text_sentiment", "lstm_sentiment", "text_embedding", "digit_classifier",
                     "movie_recommendations"):
        assert f"/v2/models/{endpoint}/infer" in commands


@pytest.fixture(scope="module")
def curl_answers(server, workdir):
    """Runs every curl example once, in order, in one folder (the digit example leaves digit.png there)."""
    return [
        (json.loads(_run_bash(_localize(command, server), workdir).strip().splitlines()[-1]), shown)
        for command, shown in _example_pairs("bash", "json")
    ]


def test_readme_curl_examples_answer_as_shown(curl_answers):
    for answer, shown in curl_answers:
        expected = json.loads(shown.replace("[...384 numbers...]", "[]"))
        assert answer["model_name"] == expected["model_name"]
        for output, shown_output in zip(sorted(answer["outputs"], key=lambda o: o["name"]),
                                        sorted(expected["outputs"], key=lambda o: o["name"]), strict=True):
            assert output["shape"] == shown_output["shape"]
            if output["datatype"] == "BYTES":
                assert output["data"] == shown_output["data"]
            elif shown_output["data"]:
                np.testing.assert_allclose(output["data"], shown_output["data"], atol=CROSS_CPU_ATOL)


def test_readme_diabetes_curl_answers_with_sklearns_prediction(server, workdir):
    (command,) = [body for body, _ in _example_pairs("bash", "json") if "diabetes_regressor" in body]
    answer = json.loads(_run_bash(_localize(command, server), workdir))
    features = json.loads(re.search(r"-d '(.*)'", command, flags=re.DOTALL).group(1))["inputs"][0]["data"]
    expected = tabular.train_diabetes_pipeline(datasets.diabetes()).predict(np.array([features], dtype=np.float32))[0]
    assert answer["outputs"][0]["data"][0] == pytest.approx(expected, abs=1e-4)


def test_readme_python_examples_print_what_is_shown(server, workdir, curl_answers):
    assert (workdir / "digit.png").is_file()  # from the curl example, as a reader would have it
    examples = _example_pairs("python", "text")
    assert len(examples) == 2  # tritonclient, then our Client
    for script, shown in examples:
        done = subprocess.run([sys.executable, "-c", _localize(script, server)], capture_output=True, text=True,
                              timeout=120, cwd=workdir, env={**os.environ, "PYTHONPATH": str(paths.root())})
        assert done.returncode == 0, done.stderr
        assert NUMBER.sub("#", done.stdout) == NUMBER.sub("#", shown)  # everything but the numbers exactly
        np.testing.assert_allclose([float(n) for n in NUMBER.findall(done.stdout)],
                                   [float(n) for n in NUMBER.findall(shown)], atol=CROSS_CPU_ATOL)
