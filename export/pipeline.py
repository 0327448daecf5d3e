"""One model's export from start to finish, and the up-to-date check that lets `make export` skip it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from importlib import metadata
from pathlib import Path

from export import ExportError
from export.config import model_config, to_pbtxt, write_if_changed
from export.graph import check_graph
from export.registry import ModelSpec
from export.verify import check_parity, run_onnx

EXPORT_DIR = Path(__file__).resolve().parent
RECORD_NAME = "export.json"  # beside model.onnx; Triton ignores it
FRAMEWORKS = ("torch", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


@dataclasses.dataclass(frozen=True)
class ExportRecord:
    """What one export produced; written as ``export.json`` beside the model file."""

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


def fingerprint() -> str:
    """Changes whenever the export code or a framework version changes: then models are re-exported."""
    digest = hashlib.sha256()
    for path in sorted(EXPORT_DIR.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    for package in FRAMEWORKS:
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    return digest.hexdigest()[:16]


def up_to_date(spec: ModelSpec, repository: Path, current: str) -> ExportRecord | None:
    """The record of a previous export that is still current, or None."""
    version_dir = repository / spec.name / str(spec.version)
    record_path = version_dir / RECORD_NAME
    if not (version_dir / "model.onnx").is_file() or not record_path.is_file():
        return None
    try:
        record = ExportRecord(**json.loads(record_path.read_text()))
    except (TypeError, ValueError):
        return None  # an older or damaged record: export again
    return record if record.fingerprint == current else None


def export_model(spec: ModelSpec, repository: Path, current: str) -> tuple[ExportRecord, bool]:
    """Builds, checks, verifies and writes one model.

    Returns:
        The record, and whether ``config.pbtxt`` changed (then it should be committed).

    Raises:
        ExportError: on any failure, naming the model.
    """
    start = time.perf_counter()
    try:
        built = spec.build()
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{spec.name}: building from {spec.source} failed: {exc}") from exc
    check_graph(built.onnx_model, spec.name)
    outputs = run_onnx(built.onnx_model, built.holdout)
    errors = check_parity(spec.name, outputs, built.expected, spec.atol, spec.source)
    metric = built.metric(outputs)
    config_text = to_pbtxt(model_config(spec.name, built.onnx_model, spec.serving))

    model_dir = repository / spec.name
    version_dir = model_dir / str(spec.version)
    version_dir.mkdir(parents=True, exist_ok=True)
    payload = built.onnx_model.SerializeToString()
    tmp = version_dir / "model.onnx.tmp"
    tmp.write_bytes(payload)
    tmp.replace(version_dir / "model.onnx")  # a running server never sees half a file
    changed = write_if_changed(model_dir / "config.pbtxt", config_text)
    record = ExportRecord(
        model=spec.name,
        version=spec.version,
        source=spec.source,
        format="ONNX",
        size_bytes=len(payload),
        parity_max_abs_error=errors,
        tolerance=spec.atol,
        metric_name=spec.metric_name,
        metric=round(metric, 6),
        export_s=round(time.perf_counter() - start, 2),
        fingerprint=current,
    )
    (version_dir / RECORD_NAME).write_text(json.dumps(dataclasses.asdict(record), indent=2) + "\n")
    return record, changed
