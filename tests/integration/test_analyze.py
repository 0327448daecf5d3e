"""make analyze end to end: Model Analyzer (``make tools`` installs it into .triton/analyze/; so does this test's
setup) launches the embedded
tritonserver itself, loads a config variant and measures it and the shipped config with perf_analyzer."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from tritonkit import paths, tools

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_model_analyzer_measures_a_variant_and_the_shipped_config(tmp_path):
    assert tools.install(["model-analyzer", "perf-analyzer"]) is None  # test setup: pip into their own venvs
    done = subprocess.run([sys.executable, "-m", "tritonkit.bench.analyze", "--model", "diabetes_regressor",
                           "--instance-count", "1", "--max-batch-size", "8", "--concurrency", "1",
                           "--out", str(tmp_path)], cwd=paths.root(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with (tmp_path / "results" / "metrics-model-inference.csv").open() as handle:
        rows = {row["Model Config Path"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"diabetes_regressor_config_0", "diabetes_regressor_config_default"}
    assert rows["diabetes_regressor_config_0"]["Max Batch Size"] == "8"
    assert all(float(row["Throughput (infer/sec)"]) > 0 for row in rows.values())
    assert (tmp_path / "reports" / "summaries" / "diabetes_regressor" / "result_summary.html").is_file()
    log = (tmp_path / "tritonserver.log").read_text()
    assert "Started HTTPService at 127.0.0.1:" in log and "0.0.0.0" not in log  # loopback only
