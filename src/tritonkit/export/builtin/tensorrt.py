"""The GPU repository of the built-in models (``python -m tritonkit.export --tensorrt``).

Engines go to ``gpu_repository/<model>/1/model.plan`` with a generated ``config.pbtxt``
(``platform: "tensorrt_plan"``, ``KIND_GPU``), outside the CPU repository that the embedded server and
CI serve. Each engine is checked against ONNX Runtime on the same inputs before it is kept.

``gpu_repository/`` is then completed with a copy of every CPU model that has no engine (``diabetes_regressor``,
or a model whose build failed), so a GPU host serves it alone with ``ensembles/``: tritonserver refuses a model
whose name is in two of its repositories ("not unique across all model repositories"; both copies stay unloaded),
so it cannot be put ahead of ``model_repository/``.

A classifier whose CPU graph answers its labels (``convert/head.py``) cannot be one engine: TensorRT holds no
``LabelEncoder`` and no string output. Its engine is built from the graph cut at ``logits`` and served as
``<model>_engine``; the head alone is ``<model>_head`` (ONNX Runtime, on the CPU: microseconds); and ``<model>``
is an ensemble of the two, so ``ensembles/`` wires the same name on both hosts::

    <model>  (ensemble, version 1)  =  <model>_engine (tensorrt_plan, KIND_GPU)  ->  <model>_head (onnxruntime, CPU)
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from tritonkit.export import ExportError
from tritonkit.export.convert import head, onnx2trt
from tritonkit.export.repository.config import LABEL_FILE, model_config, to_pbtxt, write_if_changed
from tritonkit.export.repository.ensembles import EnsembleSpec, Stage, ensemble_config, header
from tritonkit.export.verify import check_parity, run_onnx

ENGINE, HEAD = "_engine", "_head"  # a headed classifier's engine and head, beside its ensemble


def tensorrt_config(name: str, onnx_model, options, labels: tuple[str, ...]):
    """The ONNX model's config, turned into a TensorRT plan on the GPU."""
    config = model_config(name, onnx_model, options, labels=labels)
    config.ClearField("backend")
    config.ClearField("parameters")  # ONNX Runtime thread settings mean nothing to TensorRT
    config.platform = "tensorrt_plan"
    config.instance_group[0].kind = config.instance_group[0].KIND_GPU
    return config


def has_engine(gpu_repository: Path, name: str) -> bool:
    """Whether ``name`` is served from an engine there: its own, or (a headed classifier) its ``_engine``'s."""
    return any((gpu_repository / folder / "1" / "model.plan").is_file() for folder in (name, name + ENGINE))


def complete_repository(cpu_repository: Path, gpu_repository: Path) -> list[str]:
    """Copies into ``gpu_repository`` every model of ``cpu_repository`` that has no engine there (replacing an
    earlier copy); an engine's folders are left alone. Returns the names copied."""
    copied = []
    for source in sorted(path.parent for path in cpu_repository.glob("*/config.pbtxt")):
        target = gpu_repository / source.name
        if has_engine(gpu_repository, source.name):
            continue
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
        copied.append(source.name)
    return copied


def export_engine(spec, cpu_repository: Path, gpu_repository: Path) -> dict[str, float]:
    """Builds ``spec``'s FP16 engine from its exported FP32 ONNX, checks it against ONNX Runtime, writes it.

    Returns:
        The max absolute error per output.
    """
    import onnx

    onnx_path = cpu_repository / spec.name / "1" / "model.onnx"
    if not onnx_path.is_file():
        raise ExportError(f"{spec.name}: {onnx_path} is missing; run `make export` before --tensorrt")
    onnx_model = onnx.load(onnx_path)
    headed = head.has_head(onnx_model)
    name = spec.name + ENGINE if headed else spec.name
    engine_path = gpu_repository / name / "1" / "model.plan"
    with tempfile.TemporaryDirectory(prefix="tritonkit-trt-") as scratch:
        if headed:
            onnx_model = head.without_head(onnx_model)
            onnx_path = Path(scratch) / "model.onnx"
            onnx.save(onnx_model, onnx_path)
        onnx2trt.build_engine(onnx_path, engine_path,
                              onnx2trt.profile_shapes(onnx_model, spec.serving.max_batch_size))
    feed = onnx2trt.sample_inputs(onnx_model)
    errors = check_parity(f"{spec.name} (TensorRT FP16)", onnx2trt.run_engine(engine_path, feed),
                          run_onnx(onnx_model, feed), spec.fp16_atol, "ONNX Runtime")
    config = tensorrt_config(name, onnx_model, spec.serving, spec.labels)
    write_if_changed(gpu_repository / name / "config.pbtxt", to_pbtxt(config))
    if spec.labels:
        write_if_changed(gpu_repository / name / LABEL_FILE, "".join(f"{label}\n" for label in spec.labels))
    if headed:
        write_head(spec, config, gpu_repository)
    return errors


def write_head(spec, engine_config, gpu_repository: Path) -> None:
    """``<model>_head`` (the head alone, ONNX Runtime on the CPU) and the ensemble ``<model>`` of the engine and
    it, beside the engine's folder (whose config is ``engine_config``)."""
    head_name = spec.name + HEAD
    head_graph = head.head_model(spec.labels)
    head_dir = gpu_repository / head_name / "1"
    head_dir.mkdir(parents=True, exist_ok=True)
    (head_dir / "model.onnx").write_bytes(head_graph.SerializeToString())
    options = dataclasses.replace(spec.serving, instance_count=1, intra_op_threads=1)
    head_config = model_config(head_name, head_graph, options, labels=spec.labels)
    write_if_changed(gpu_repository / head_name / "config.pbtxt", to_pbtxt(head_config))
    write_if_changed(gpu_repository / head_name / LABEL_FILE, "".join(f"{label}\n" for label in spec.labels))
    pipeline = EnsembleSpec(spec.name, f"{spec.name} on a GPU host: its TensorRT engine ({engine_config.name}), "
                            f"then its labels ({head_name}, ONNX Runtime on the CPU)",
                            (Stage(engine_config.name), Stage(head_name)))
    ensemble = ensemble_config(pipeline, {engine_config.name: engine_config, head_name: head_config})
    (gpu_repository / spec.name / "1").mkdir(parents=True, exist_ok=True)
    write_if_changed(gpu_repository / spec.name / "config.pbtxt", to_pbtxt(ensemble, header(pipeline.summary)))
