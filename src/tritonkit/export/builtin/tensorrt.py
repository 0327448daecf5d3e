"""The GPU repository of the built-in models (``python -m tritonkit.export --tensorrt``).

Engines go to ``gpu_repository/<model>/1/model.plan`` with a generated ``config.pbtxt``
(``platform: "tensorrt_plan"``, ``KIND_GPU``), outside the CPU repository that the embedded server and
CI serve. Each engine is checked against ONNX Runtime on the same inputs before it is kept.

``gpu_repository/`` is then completed with a copy of every CPU model that has no engine (``diabetes_regressor``,
or a model whose build failed), so a GPU host serves it alone with ``ensembles/``: tritonserver refuses a model
whose name is in two of its repositories ("not unique across all model repositories"; both copies stay unloaded),
so it cannot be put ahead of ``model_repository/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tritonkit.export import ExportError
from tritonkit.export.convert import onnx2trt
from tritonkit.export.repository.config import model_config, to_pbtxt, write_if_changed
from tritonkit.export.verify import check_parity, run_onnx


def tensorrt_config(name: str, onnx_model, options, labels: tuple[str, ...]):
    """The ONNX model's config, turned into a TensorRT plan on the GPU."""
    config = model_config(name, onnx_model, options, labels=labels)
    config.ClearField("backend")
    config.ClearField("parameters")  # ONNX Runtime thread settings mean nothing to TensorRT
    config.platform = "tensorrt_plan"
    config.instance_group[0].kind = config.instance_group[0].KIND_GPU
    return config


def complete_repository(cpu_repository: Path, gpu_repository: Path) -> list[str]:
    """Copies into ``gpu_repository`` every model of ``cpu_repository`` that has no engine there (replacing an
    earlier copy); an engine's folder is left alone. Returns the names copied."""
    copied = []
    for source in sorted(path.parent for path in cpu_repository.glob("*/config.pbtxt")):
        target = gpu_repository / source.name
        if (target / "1" / "model.plan").is_file():
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
    engine_path = gpu_repository / spec.name / "1" / "model.plan"
    onnx2trt.build_engine(onnx_path, engine_path, onnx2trt.profile_shapes(onnx_model, spec.serving.max_batch_size))
    feed = onnx2trt.sample_inputs(onnx_model)
    errors = check_parity(f"{spec.name} (TensorRT FP16)", onnx2trt.run_engine(engine_path, feed),
                          run_onnx(onnx_model, feed), spec.fp16_atol, "ONNX Runtime")
    config = tensorrt_config(spec.name, onnx_model, spec.serving, spec.labels)
    write_if_changed(gpu_repository / spec.name / "config.pbtxt", to_pbtxt(config))
    if spec.labels:
        write_if_changed(gpu_repository / spec.name / "labels.txt", "".join(f"{label}\n" for label in spec.labels))
    return errors
