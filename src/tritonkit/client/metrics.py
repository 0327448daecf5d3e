"""The server's own view of a run: Triton's per-model counters, their change, and the averages from them.

Two sources give the same counters: the Prometheus endpoint (``scrape``, used by the load test and the
benchmark) and the statistics API (``from_statistics``, used by ``tritonkit stats``). ``averages`` is the one
place where queue and compute milliseconds per request and the batch size are computed from them.
Standard library only.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from typing import Any

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


def delta(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-model change over a run (models with no request in it are left out), with ``averages`` merged in."""
    result = {}
    for model, values in after.items():
        change = {key: value - before.get(model, {}).get(key, 0.0) for key, value in values.items()}
        if change.get("success", 0.0) + change.get("failure", 0.0):
            result[model] = {**change, **averages(change)}
    return result


def averages(counters: dict[str, float]) -> dict[str, float]:
    """Milliseconds per request in the queue, in compute (input + inference + output) and in total, and the
    average batch size, from counters named as in ``COUNTERS``; zeros when there was no request."""
    requests = counters.get("success", 0.0) + counters.get("failure", 0.0)
    if not requests:
        return {"avg_request_ms": 0.0, "avg_queue_ms": 0.0, "avg_compute_ms": 0.0, "avg_batch": 0.0}
    compute_us = counters.get("compute_us", 0.0) + counters.get("input_us", 0.0) + counters.get("output_us", 0.0)
    return {
        "avg_request_ms": counters.get("request_us", 0.0) / requests / 1000.0,
        "avg_queue_ms": counters.get("queue_us", 0.0) / requests / 1000.0,
        "avg_compute_ms": compute_us / requests / 1000.0,
        "avg_batch": counters.get("inferences", 0.0) / max(counters.get("executions", 0.0), 1.0),
    }


def from_statistics(entry: dict[str, Any]) -> dict[str, float]:
    """One model's entry of the statistics API (JSON form) -> the counters ``averages`` reads."""
    stats = entry.get("inference_stats", {})

    def bucket(name: str) -> tuple[float, float]:
        value = stats.get(name, {})
        return float(value.get("count", 0) or 0), float(value.get("ns", 0) or 0) / 1000.0

    success, request_us = bucket("success")
    failure, _ = bucket("fail")
    return {
        "success": success, "failure": failure, "request_us": request_us,
        "queue_us": bucket("queue")[1], "compute_us": bucket("compute_infer")[1],
        "input_us": bucket("compute_input")[1], "output_us": bucket("compute_output")[1],
        "inferences": float(entry.get("inference_count", 0) or 0),
        "executions": float(entry.get("execution_count", 0) or 0),
    }
