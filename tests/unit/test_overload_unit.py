"""The overload measurement's arithmetic: outcomes sorted into accepted, refused and everything else."""

from tritonkit.loadtest.overload import summarize


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
