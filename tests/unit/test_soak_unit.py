"""The soak's arithmetic: growth from the first sample after the warm-up to the last, per process."""

from tritonkit.loadtest.soak import growth, markdown

SAMPLES = [
    {"t_s": 0.0, "rss_mib": {"tritonserver": 100.0, "stub": 50.0}},  # still warming up: not the baseline
    {"t_s": 60.0, "rss_mib": {"tritonserver": 200.0, "stub": 80.0}},
    {"t_s": 600.0, "rss_mib": {"tritonserver": 204.0, "stub": 80.0}},
]


def test_growth_starts_after_the_warm_up():
    assert growth(SAMPLES, warmup_s=60.0) == {
        "tritonserver": {"baseline_mib": 200.0, "end_mib": 204.0, "growth_percent": 2.0},
        "stub": {"baseline_mib": 80.0, "end_mib": 80.0, "growth_percent": 0.0},
    }


def test_report_lists_the_largest_growth_first_with_the_command():
    report = {"minutes": 10, "warmup_minutes": 1, "max_growth_percent": 5, "command": "python -m x",
              "machine": "cpu", "date": "today", "counts": {"text_sentiment": 9, "error Timeout": 1},
              "growth": growth(SAMPLES, warmup_s=60.0)}
    text = markdown(report)
    assert "`python -m x`" in text and "9 answered" in text and "'error Timeout': 1" in text
    assert text.index("| tritonserver |") < text.index("| stub |")
    assert "| **all 2 processes** | 280.0 | 284.0 | +1.43 % |" in text  # 200 + 80 -> 204 + 80
