"""The README's commands, run exactly as written (ports aside) against the real server."""

import json
import re
import subprocess

import numpy as np
import pytest

from export import datasets, tabular
from server.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def readme_blocks(language: str) -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_readme_curl_request_answers_with_sklearns_prediction(server):
    (command,) = [block for block in readme_blocks("bash") if "curl" in block and "diabetes_regressor" in block]
    command = command.replace("localhost:8000", f"127.0.0.1:{server.settings.http_port}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    features = json.loads(re.search(r"-d '(.*)'", command, flags=re.DOTALL).group(1))["inputs"][0]["data"]
    split = datasets.diabetes()
    expected = tabular.train_diabetes_pipeline(split).predict(np.array([features], dtype=np.float32))[0]
    assert answer["outputs"][0]["data"][0] == pytest.approx(expected, abs=1e-4)
    shown = json.loads(next(b for b in readme_blocks("json") if "diabetes_regressor" in b))
    assert shown["outputs"][0]["data"][0] == pytest.approx(answer["outputs"][0]["data"][0], abs=1e-4)
