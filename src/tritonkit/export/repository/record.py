"""``export.json``: what one exported version is, written beside its model file (Triton ignores it).

Written last by every export, so a record means the whole export finished; the model card, the up-to-date check
and the benchmark read it back.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

RECORD_NAME = "export.json"


@dataclasses.dataclass(frozen=True)
class ExportRecord:
    """One exported version.

    Attributes:
        model: the Triton model name.
        version: the version folder.
        source: the source framework (or, for an added model, its kind: ``ONNX``, ``TorchScript``...).
        format: what the version holds (``ONNX FP32``, ``ONNX INT8 (...)``).
        size_bytes: the size of the model file.
        parity_max_abs_error: the worst absolute error per output against the source, on the checked rows.
        tolerance: the largest error allowed.
        metric_name: what ``metric`` measures (a held-out metric, or for an added model what parity was run on).
        metric: its value.
        export_s: seconds the export of this model took until this version was checked.
        fingerprint: the export's inputs (code, data, spec, frameworks); a change means export again.
        details: further figures for the model card.
        breakdown: the metric by condition or category, with its table's title.
        source_sha256: the SHA-256 of the source file an added model or a checkpoint came from ("" when trained here).
        agreement: an INT8 version's agreement with FP32 (``labels agree``, ``min cosine``...), for the model card.
    """

    model: str
    version: int
    source: str
    format: str
    size_bytes: int
    parity_max_abs_error: dict[str, float]
    tolerance: float
    metric_name: str
    metric: float
    export_s: float
    fingerprint: str
    details: dict[str, float] = dataclasses.field(default_factory=dict)
    breakdown: dict[str, float] = dataclasses.field(default_factory=dict)
    breakdown_title: str = ""
    source_sha256: str = ""
    agreement: dict[str, float] = dataclasses.field(default_factory=dict)

    def write(self, version_dir: Path) -> None:
        (Path(version_dir) / RECORD_NAME).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def read_record(path: Path) -> ExportRecord | None:
    """The record at ``path`` (a version folder or its ``export.json``), or None if missing, older or damaged."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        return ExportRecord(**json.loads(path.read_text()))
    except (OSError, TypeError, ValueError):
        return None


def records_of(model_dir: Path) -> list[ExportRecord]:
    """Every version's record of one model folder, by version number."""
    versions = sorted((child for child in Path(model_dir).iterdir() if child.is_dir() and child.name.isdigit()),
                      key=lambda child: int(child.name))
    return [record for version in versions if (record := read_record(version)) is not None]
