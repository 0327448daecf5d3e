"""Admission at the front: a model with too many requests in flight is refused before tritonserver spends CPU on it.

Triton's queue policy (``max_queue_size``) refuses a request only when it reaches a full queue. In a pipeline that is
after the steps before the bottleneck have worked on it: at twice the capacity of ``lstm_sentiment`` the tokenizer
tokenized every request and the classifier's queue then refused 8 in 10, at a p99 of 914 ms (bench/results/
OVERLOAD.md, before this). The front (guard.py over HTTP, grpc_guard.py over gRPC, one event loop) counts the
requests in flight per model and refuses above a limit taken from the same configs:

  a model      its queue plus one batch per instance, a batch being taken from the queue:
               ``max_queue_size + min(max_batch_size, max_queue_size) * instances``;
  an ensemble  the smallest limit of its steps (its bottleneck's).

A model without a bounded queue has no limit. A refusal is HTTP 503 with ``Retry-After`` (tritonkit's client and
HAProxy retry it) or gRPC ``UNAVAILABLE``; Triton's own queue refusals stay behind it as the second line.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

RETRY_AFTER_S = 1


def model_limit(config) -> int | None:
    """``max_queue_size + min(max_batch_size, max_queue_size) * instances`` of a ``ModelConfig`` (what it queues and
    runs at once), or None without a bounded queue."""
    if not config.HasField("dynamic_batching"):
        return None
    queue = config.dynamic_batching.default_queue_policy.max_queue_size
    if queue <= 0:
        return None
    instances = sum(group.count or 1 for group in config.instance_group) or 1
    return queue + min(max(config.max_batch_size, 1), queue) * instances


def limits(repositories: Iterable[Path]) -> dict[str, int]:
    """Every model's and ensemble's in-flight limit, from the ``config.pbtxt`` files of ``repositories``."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    configs = {}
    for repository in repositories:
        for path in sorted(Path(repository).glob("*/config.pbtxt")):
            config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
            configs[config.name or path.parent.name] = config
    found = {}
    for name, config in configs.items():
        if config.platform == "ensemble":
            steps = [model_limit(configs[step.model_name]) for step in config.ensemble_scheduling.step
                     if step.model_name in configs]
            bounded = [limit for limit in steps if limit is not None]
            limit = min(bounded) if bounded else None
        else:
            limit = model_limit(config)
        if limit is not None:
            found[name] = limit
    return found


class Admission:
    """Requests in flight per model, against ``limits`` (model name -> the most in flight at once)."""

    def __init__(self, model_limits: dict[str, int] | None = None):
        self.limits = dict(model_limits or {})
        self.in_flight: Counter[str] = Counter()

    @classmethod
    def from_json(cls, text: str | None) -> Admission:
        return cls(json.loads(text) if text else {})

    def enter(self, model: str) -> str | None:
        """Counts the request in and returns None, or returns why it is refused (and does not count it)."""
        limit = self.limits.get(model)
        if limit is not None and self.in_flight[model] >= limit:
            return (f"{model} is overloaded: {limit} requests are in flight, as many as it queues and runs at "
                    f"once; retry after {RETRY_AFTER_S} s with backoff")
        self.in_flight[model] += 1
        return None

    def leave(self, model: str) -> None:
        self.in_flight[model] -= 1
