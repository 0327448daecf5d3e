"""Admission at the front: a model with too many requests in flight is refused before tritonserver spends CPU on it.

Triton's queue policy (``max_queue_size``) refuses a request only when it reaches a full queue. In a pipeline that is
after the steps before the bottleneck have worked on it: at twice the capacity of ``lstm_sentiment`` the tokenizer
tokenized every request and the classifier's queue then refused 8 in 10, at a p99 of 914 ms (bench/results/
OVERLOAD.md, before this). The front (guard.py over HTTP, grpc_guard.py over gRPC, one event loop) counts the
requests in flight per model and refuses above the model's limit, taken from the same configs:

  a model      what its queue holds, ``max_queue_size``;
  an ensemble  the smallest limit of its steps (its bottleneck's), and each request to it also counts against every
               step, so that calls to a step directly and through every pipeline that uses it share its limit.

So a request the front admits always finds room in every queue on its way: Triton's own queue refusal, which comes
late, never happens behind the front. An earlier limit, the queue plus one batch per instance, let Triton refuse
about 1 in 20 of the LSTM pipeline's requests at twice its capacity, after tokenizing them: those refusals took
50 ms at the median and 114 ms at p99, and were the whole tail of its refusals (the front's own stayed under 2 ms).
An instance does not always run a full batch (the dynamic batcher starts one with what has arrived), so nothing
above ``max_queue_size`` is safe.

A model without a bounded queue has no limit. A refusal is HTTP 503 with ``Retry-After`` (tritonkit's client and
HAProxy retry it) or gRPC ``UNAVAILABLE``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

RETRY_AFTER_S = 1


def model_limit(config) -> int | None:
    """What the queue of a ``ModelConfig`` holds (``max_queue_size``), or None without a bounded queue."""
    if not config.HasField("dynamic_batching"):
        return None
    queue = config.dynamic_batching.default_queue_policy.max_queue_size
    return queue if queue > 0 else None


def _configs(repositories: Iterable[Path]) -> dict:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    configs = {}
    for repository in repositories:
        for path in sorted(Path(repository).glob("*/config.pbtxt")):
            config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
            configs[config.name or path.parent.name] = config
    return configs


def steps(repositories: Iterable[Path]) -> dict[str, list[str]]:
    """Every ensemble's step models (nested ensembles unfolded), from the ``config.pbtxt`` files."""
    configs = _configs(repositories)

    def unfold(name: str, seen: frozenset[str]) -> list[str]:
        config = configs.get(name)
        if config is None or config.platform != "ensemble" or name in seen:
            return []
        found = []
        for step in config.ensemble_scheduling.step:
            for model in [step.model_name, *unfold(step.model_name, seen | {name})]:
                if model not in found:
                    found.append(model)
        return found

    return {name: unfold(name, frozenset()) for name, config in configs.items() if config.platform == "ensemble"}


def limits(repositories: Iterable[Path]) -> dict[str, int]:
    """Every model's and ensemble's in-flight limit, from the ``config.pbtxt`` files of ``repositories``."""
    repositories = list(repositories)
    configs = _configs(repositories)
    pipelines = steps(repositories)
    found = {name: limit for name, config in configs.items() if (limit := model_limit(config)) is not None}
    for ensemble, members in pipelines.items():
        bounded = [found[step] for step in members if step in found]
        if bounded:
            found[ensemble] = min(bounded)
    return found


def plan(repositories: Iterable[Path]) -> dict:
    """The front's admission: the limits and the pipelines' steps (what ``Admission.from_repositories`` takes)."""
    repositories = list(repositories)
    model_limits = limits(repositories)
    return {"limits": model_limits,
            "steps": {name: members for name, members in steps(repositories).items() if name in model_limits}}


class Admission:
    """Requests in flight per model, against ``limits`` (model name -> the most in flight at once); a request to an
    ensemble also counts against its ``steps``."""

    def __init__(self, model_limits: dict[str, int] | None = None, pipeline_steps: dict[str, list[str]] | None = None):
        self.limits = dict(model_limits or {})
        self.steps = {name: tuple(members) for name, members in (pipeline_steps or {}).items()}
        self.in_flight: Counter[str] = Counter()

    @classmethod
    def from_repositories(cls, repositories: Iterable[Path]) -> Admission:
        """The limits of the models in ``repositories`` (``plan``); none: no limit."""
        found = plan(repositories)
        return cls(found["limits"], found["steps"])

    def enter(self, model: str) -> str | None:
        """Counts the request in and returns None, or returns why it is refused (and does not count it)."""
        counted = (model, *self.steps.get(model, ()))
        for name in counted:
            limit = self.limits.get(name)
            if limit is not None and self.in_flight[name] >= limit:
                where = "" if name == model else f" (its step {name}, shared with every pipeline that uses it)"
                return (f"{model} is overloaded: {limit} requests are in flight{where}, as many as its queue holds; "
                        f"retry after {RETRY_AFTER_S} s with backoff")
        for name in counted:
            self.in_flight[name] += 1
        return None

    def leave(self, model: str) -> None:
        for name in (model, *self.steps.get(model, ())):
            self.in_flight[name] -= 1
