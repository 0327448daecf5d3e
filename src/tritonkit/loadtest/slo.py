"""SLOs as code: per-endpoint failure ratio and p95 limits, kept in loadtest/slo.json, checked after a run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent / "slo.json"


@dataclasses.dataclass(frozen=True)
class Objective:
    max_failure_ratio: float
    max_p95_ms: float

    def __post_init__(self):
        if not 0.0 <= self.max_failure_ratio <= 1.0 or self.max_p95_ms <= 0:
            raise ValueError("max_failure_ratio must be within 0..1 and max_p95_ms > 0")


def load(path: Path = DEFAULT_FILE) -> dict[str, Objective]:
    """Model name (or ``"*"`` for any other) -> Objective. Keys starting with ``_`` are comments."""
    raw = json.loads(Path(path).read_text())
    return {name: Objective(**values) for name, values in raw.items() if not name.startswith("_")}


def breaches(objectives: dict[str, Objective], results: dict[str, dict]) -> list[str]:
    """Each breached objective as a sentence; ``results`` maps a model to num_requests, failure_ratio, p95_ms."""
    found = []
    for name, result in sorted(results.items()):
        objective = objectives.get(name) or objectives.get("*")
        if objective is None or not result["num_requests"]:
            continue
        if result["failure_ratio"] > objective.max_failure_ratio:
            found.append(f"{name}: failure ratio {result['failure_ratio']:.2%} above the SLO "
                         f"{objective.max_failure_ratio:.2%}")
        if result["p95_ms"] > objective.max_p95_ms:
            found.append(f"{name}: p95 {result['p95_ms']:.0f} ms above the SLO {objective.max_p95_ms:.0f} ms")
    return found
