"""The server's own view: Triton's Prometheus counters before and after a run, per model."""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict

COUNTERS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_exec_count": "executions",
    "nv_inference_count": "inferences",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_infer_duration_us": "compute_us",
    "nv_inference_compute_input_duration_us": "input_us",
    "nv_inference_compute_output_duration_us": "output_us",
}
LINE = re.compile(r'^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$')


def parse(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text -> {model: {counter: value}} summed over versions."""
    models: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if not match or match.group(1) not in COUNTERS:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        if "model" in labels:
            models[labels["model"]][COUNTERS[match.group(1)]] += float(match.group(3))
    return {model: dict(values) for model, values in models.items()}


def scrape(url: str, timeout_s: float = 10.0) -> dict[str, dict[str, float]]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse(response.read().decode())


def delta(before: dict, after: dict) -> dict[str, dict[str, float]]:
    """Per-model change over the run, with average queue and compute milliseconds per request."""
    result = {}
    for model, values in after.items():
        change = {key: value - before.get(model, {}).get(key, 0.0) for key, value in values.items()}
        requests = change.get("success", 0.0) + change.get("failure", 0.0)
        if not requests:
            continue
        change["avg_queue_ms"] = change.get("queue_us", 0.0) / requests / 1000.0
        change["avg_compute_ms"] = (change.get("compute_us", 0.0) + change.get("input_us", 0.0)
                                    + change.get("output_us", 0.0)) / requests / 1000.0
        change["avg_batch"] = change.get("inferences", 0.0) / max(change.get("executions", 0.0), 1.0)
        result[model] = change
    return result
