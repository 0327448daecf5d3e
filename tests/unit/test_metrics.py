"""tritonkit.client.metrics: one place turns Triton's counters into per-request averages, from either source."""

import pytest

from tritonkit.client import metrics

# One model's entry of the statistics API (JSON form), for 4 requests in 2 executions.
STATISTICS = {
    "name": "minilm_sentiment", "version": "1", "inference_count": "4", "execution_count": "2",
    "inference_stats": {
        "success": {"count": "4", "ns": "40000000"}, "fail": {"count": "0", "ns": "0"},
        "queue": {"count": "4", "ns": "8000000"}, "compute_input": {"count": "4", "ns": "400000"},
        "compute_infer": {"count": "4", "ns": "20000000"}, "compute_output": {"count": "4", "ns": "1600000"},
    },
}


def test_statistics_api_and_prometheus_give_the_same_averages():
    from_api = metrics.averages(metrics.from_statistics(STATISTICS))
    prometheus = metrics.parse(
        'nv_inference_request_success{model="m",version="1"} 4\n'
        'nv_inference_request_duration_us{model="m",version="1"} 40000\n'
        'nv_inference_queue_duration_us{model="m",version="1"} 8000\n'
        'nv_inference_compute_input_duration_us{model="m",version="1"} 400\n'
        'nv_inference_compute_infer_duration_us{model="m",version="1"} 20000\n'
        'nv_inference_compute_output_duration_us{model="m",version="1"} 1600\n'
        'nv_inference_count{model="m",version="1"} 4\n'
        'nv_inference_exec_count{model="m",version="1"} 2\n'
    )
    from_prometheus = metrics.averages(prometheus["m"])
    assert from_api == pytest.approx(from_prometheus)
    assert from_api == pytest.approx({"avg_request_ms": 10.0, "avg_queue_ms": 2.0, "avg_compute_ms": 5.5,
                                      "avg_batch": 2.0})


def test_averages_are_zero_without_requests():
    assert metrics.averages({}) == {"avg_request_ms": 0.0, "avg_queue_ms": 0.0, "avg_compute_ms": 0.0,
                                    "avg_batch": 0.0}


def test_delta_leaves_out_models_without_requests_in_the_run():
    before = {"idle": {"success": 5.0}, "busy": {"success": 1.0, "queue_us": 1000.0}}
    after = {"idle": {"success": 5.0}, "busy": {"success": 3.0, "queue_us": 5000.0}}
    change = metrics.delta(before, after)
    assert set(change) == {"busy"} and change["busy"]["avg_queue_ms"] == pytest.approx(2.0)
