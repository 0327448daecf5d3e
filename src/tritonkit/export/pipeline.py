"""One model's export from start to finish, and the up-to-date check that lets `make export` skip it.

Every export, a built-in model's or a user's own (``export add``), goes the same way: build (train, load a
checkpoint or read the user's file and convert it), check each version's graph, run it with ONNX Runtime against
the source framework within the tolerance, record the figures, and only then write. A classifier with labels gets
them computed in its graph (``convert/head.py``), checked against the Python postprocess step on the same rows.
``Checked`` holds a model whose every version passed; ``write_versions`` puts it into a repository.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tritonkit.export import ExportError
from tritonkit.export.convert import head
from tritonkit.export.convert.graph import check_graph
from tritonkit.export.convert.quantize import quantize_int8
from tritonkit.export.progress import step
from tritonkit.export.repository.record import RECORD_NAME, ExportRecord, read_record
from tritonkit.export.spec import Built, ModelSpec
from tritonkit.export.verify import check_parity, run_onnx


@dataclasses.dataclass(frozen=True)
class Checked:
    """A model whose every version passed its checks, not yet written.

    Attributes:
        built: what the builder returned.
        records: one per version, in version order.
        payloads: serialized graphs by version.
        outputs: each version's ONNX Runtime outputs on ``built.holdout``, by version.
    """

    built: Built
    records: list[ExportRecord]
    payloads: dict[int, bytes]
    outputs: dict[int, dict[str, np.ndarray]]


def _breakdown(built: Built, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    if built.breakdown is None:
        return {}
    return {name: round(float(value), 6) for name, value in built.breakdown(outputs).items()}


def pytorch_weights_path(repository: Path, model: str) -> Path:
    """Where a model's trained PyTorch weights go: ``artifacts/pytorch/`` beside the repository."""
    return Path(repository).resolve().parent / "artifacts" / "pytorch" / f"{model}.pt"


def up_to_date(
    spec: ModelSpec, repository: Path, current: str, steps_repository: Path | None = None
) -> list[ExportRecord] | None:
    """The records of a previous export whose every version (and step asset) is still current, or None."""
    if steps_repository is not None and not all(
        (steps_repository / step_name / "1").is_dir() and any((steps_repository / step_name / "1").glob("*.json"))
        for step_name in spec.step_assets
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


def build(spec: ModelSpec, build_model: Callable[[], Built] | None = None) -> Built:
    """Runs the builder (``spec.build`` unless given another), turning any failure into an ``ExportError``."""
    try:
        return (build_model or spec.build)()
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{spec.name}: building from {spec.source} failed: {type(exc).__name__}: {exc}") from exc


def check_versions(spec: ModelSpec, built: Built, current: str, *, start: float, source_sha256: str = "") -> Checked:
    """Checks every version of ``spec`` made from ``built``; raises ``ExportError`` before anything is written."""
    graphs = {1: ("ONNX FP32", built.onnx_model, spec.atol)}
    if spec.int8_atol is not None:
        with step(f"{spec.name}: INT8 quantization ({spec.int8_scheme.describe()})"):
            try:
                graphs[2] = (spec.int8_scheme.describe(),
                             quantize_int8(built.onnx_model, spec.int8_scheme, built.calibration), spec.int8_atol)
            except ValueError as exc:
                raise ExportError(f"{spec.name}: INT8 quantization failed: {exc}") from exc
    records, payloads, outputs = [], {}, {}
    for version, (form, plain, tolerance) in graphs.items():
        label = f"{spec.name} v{version}"
        # a classifier answers its labels itself: no Python postprocess step behind it
        graph = head.with_head(plain, spec.labels) if spec.labels else plain
        check_graph(graph, label)
        rows = len(next(iter(built.holdout.values())))
        with step(f"{label}: parity with {spec.source} on {rows} rows"):
            outputs[version] = run_onnx(graph, built.holdout)
        errors = check_parity(label, outputs[version], built.expected, tolerance, spec.source)
        if spec.labels:
            errors[head.PROBABILITIES] = head.check_head(label, outputs[version], spec.labels)
        payloads[version] = graph.SerializeToString()
        records.append(ExportRecord(
            model=spec.name, version=version, source=spec.source, format=form, size_bytes=len(payloads[version]),
            parity_max_abs_error=errors, tolerance=tolerance, metric_name=spec.metric_name,
            metric=round(built.metric(outputs[version]), 6), export_s=round(time.perf_counter() - start, 2),
            fingerprint=current, details=dict(built.details), breakdown_title=built.breakdown_title,
            breakdown=_breakdown(built, outputs[version]), source_sha256=source_sha256,
        ))
    _check_int8_drop(spec, records)  # before anything is written: a failed INT8 version is never served
    return Checked(built, records, payloads, outputs)


def export_model(spec: ModelSpec, repository: Path, current: str, steps_repository: Path | None = None, *,
                 build_model: Callable[[], Built] | None = None, source_sha256: str = "") -> list[ExportRecord]:
    """Builds, checks, verifies and writes every version of one model.

    Args:
        spec: the model.
        repository: the model repository to write.
        current: the export fingerprint to record.
        steps_repository: the ensembles repository whose steps get ``spec.step_assets``; None skips them.
        build_model: builds in place of ``spec.build`` (a checkpoint's loader).
        source_sha256: the SHA-256 of the file the model came from, for the record.

    Raises:
        ExportError: on any failure, naming the model (nothing of a failed version is written).
    """
    start = time.perf_counter()
    checked = check_versions(spec, build(spec, build_model), current, start=start, source_sha256=source_sha256)
    write_versions(spec, checked, repository, steps_repository)
    return checked.records


def write_versions(spec: ModelSpec, checked: Checked, repository: Path, steps_repository: Path | None = None) -> None:
    """Writes every checked version's graph, assets and (last) record."""
    built = checked.built
    for version, payload in checked.payloads.items():
        _write_version(repository / spec.name / str(version), payload, built)
    if steps_repository is not None:
        for step_name in spec.step_assets:
            for name, content in built.assets.items():
                (steps_repository / step_name / "1").mkdir(parents=True, exist_ok=True)
                (steps_repository / step_name / "1" / name).write_bytes(content)
    if spec.keeps_pytorch_weights:
        _save_pytorch_weights(spec, built, pytorch_weights_path(repository, spec.name))
    for record in checked.records:  # written last: a record means the whole export finished
        record.write(repository / spec.name / str(record.version))


def _check_int8_drop(spec: ModelSpec, records: list[ExportRecord]) -> None:
    """Fails the export when the INT8 version falls more than ``spec.int8_max_drop`` below FP32 held out."""
    if spec.int8_max_drop is None:
        return
    fp32, int8 = (record.metric for record in records)
    if fp32 - int8 > spec.int8_max_drop:
        raise ExportError(
            f"{spec.name} v2 (INT8): held-out {spec.metric_name} {int8:.4f} is {fp32 - int8:.4f} below FP32's "
            f"{fp32:.4f}, more than the {spec.int8_max_drop} allowed; fix: keep more dense layers FP32 in the "
            "model's Int8Scheme (export/builtin/registry.py)")


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
