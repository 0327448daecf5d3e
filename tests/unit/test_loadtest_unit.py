"""The load test's SLO check and Prometheus arithmetic, without locust or a server."""

import json

import pytest

from tritonkit.client import metrics
from tritonkit.loadtest import slo

PROMETHEUS = """# HELP nv_inference_request_success Number of successful inference requests
nv_inference_request_success{model="text_sentiment",version="1"} 10
nv_inference_request_failure{model="text_sentiment",version="1"} 2
nv_inference_exec_count{model="minilm_sentiment",version="1"} 3
nv_inference_count{model="minilm_sentiment",version="1"} 12
nv_inference_request_success{model="minilm_sentiment",version="1"} 12
nv_inference_queue_duration_us{model="minilm_sentiment",version="1"} 24000
nv_inference_compute_infer_duration_us{model="minilm_sentiment",version="1"} 120000
nv_cpu_utilization 0.5
"""


def test_metrics_parse_and_delta_give_per_request_averages():
    after = metrics.parse(PROMETHEUS)
    assert after["text_sentiment"] == {"success": 10.0, "failure": 2.0}
    change = metrics.delta({"minilm_sentiment": {"success": 2.0, "queue_us": 4000.0, "compute_us": 20000.0}}, after)
    assert change["minilm_sentiment"]["avg_queue_ms"] == pytest.approx(2.0)  # 20 ms over 10 requests
    assert change["minilm_sentiment"]["avg_compute_ms"] == pytest.approx(10.0)
    assert change["minilm_sentiment"]["avg_batch"] == pytest.approx(4.0)


def test_slo_breaches_name_the_endpoint_and_the_limit(tmp_path):
    path = tmp_path / "slo.json"
    path.write_text(json.dumps({"_comment": "x", "a": {"max_failure_ratio": 0.01, "max_p95_ms": 100},
                                "*": {"max_failure_ratio": 0.5, "max_p95_ms": 1000}}))
    objectives = slo.load(path)
    results = {
        "a": {"num_requests": 10, "failure_ratio": 0.1, "p95_ms": 150},
        "b": {"num_requests": 10, "failure_ratio": 0.0, "p95_ms": 500},
        "idle": {"num_requests": 0, "failure_ratio": 0.0, "p95_ms": 0},
    }
    assert slo.breaches(objectives, results) == [
        "a: failure ratio 10.00% above the SLO 1.00%",
        "a: p95 150 ms above the SLO 100 ms",
    ]


def test_shipped_slo_file_covers_every_public_endpoint():
    objectives = slo.load()
    for endpoint in ("text_embedding", "text_sentiment", "lstm_sentiment", "digit_classifier",
                     "diabetes_regressor", "cancer_classifier"):
        assert endpoint in objectives


def test_slo_objective_refuses_impossible_limits():
    with pytest.raises(ValueError, match="max_failure_ratio must be within 0..1"):
        slo.Objective(max_failure_ratio=2.0, max_p95_ms=10)
