"""The overload measurement's arithmetic: outcomes sorted into accepted, refused and everything else."""

import json

from tritonkit import paths
from tritonkit.loadtest.overload import ENDPOINTS, QUEUE_REFUSED, markdown, summarize


def test_summary_separates_refusals_from_other_failures():
    outcomes = [("accepted", float(ms)) for ms in range(1, 101)] + [("refused", 5.0)] * 10 + [("Timeout: slow", 9e3)]
    summary = summarize(outcomes, rate=200.0, seconds=1.0)
    assert summary["sent"] == 111 and summary["accepted"]["count"] == 100
    assert summary["accepted"]["p50_ms"] == 51.0 and summary["accepted"]["p99_ms"] == 100.0
    assert summary["refused"] == {"count": 10, "p50_ms": 5.0, "p95_ms": 5.0, "p99_ms": 5.0, "max_ms": 5.0,
                                  "mean_ms": 5.0}
    assert summary["other"] == {"Timeout: slow": 1}


def test_summary_of_a_run_without_refusals_says_so():
    assert summarize([("accepted", 3.0)], rate=1.0, seconds=1.0)["refused"] == {"count": 0}


def test_every_public_endpoint_of_openapi_json_can_be_overloaded():
    document = json.loads((paths.root() / "openapi.json").read_text())
    public = {path.split("/")[3] for path in document["paths"] if path.endswith("/infer")}
    assert set(ENDPOINTS) == public


def test_the_report_has_a_row_per_endpoint_with_its_command():
    result = summarize([("accepted", 40.0)] * 9 + [("refused", 3.0), ("Timeout: slow", 9e3)], rate=20.0, seconds=0.5)
    row = {"endpoint": "text_sentiment", "capacity_per_s": 10.0, "closed_loop_per_s": 8.0, "factor": 2.0, **result}
    text = markdown([row],
                    "python -m tritonkit.loadtest.overload --endpoint all")
    assert "`python -m tritonkit.loadtest.overload --endpoint all`" in text
    assert "| `text_sentiment` | 10.0 req/s (8.0) | 20.0 req/s | 0 ms | 9 of 11 | 40 / 40 / 40 ms | 1 | " \
           "3 / 3 / 3 ms | Timeout: slow: 1 |" in text


def test_a_refusal_by_tritons_queue_is_a_refusal_and_named_apart():
    summary = summarize([("refused", 1.0), (QUEUE_REFUSED, 60.0)], rate=2.0, seconds=1.0)
    assert summary["refused"]["count"] == 2 and summary["refused"]["max_ms"] == 60.0
    assert summary["other"] == {QUEUE_REFUSED: 1}


def test_a_row_whose_requests_left_late_is_marked_as_no_valid_measurement():
    result = summarize([("accepted", 40.0)] * 10, rate=20.0, seconds=0.5, lateness_ms=[5000.0] * 10)
    text = markdown([{"endpoint": "cancer_classifier", "capacity_per_s": 10.0, "closed_loop_per_s": 8.0, "factor": 2.0,
                     **result}], "x")
    assert "| `cancer_classifier` (*) |" in text and "not a valid measurement" in text
