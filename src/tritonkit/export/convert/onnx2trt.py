"""ONNX -> TensorRT FP16 engines with Polygraphy, for GPU hosts (``python -m tritonkit.export --tensorrt``).

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

import numpy as np

from tritonkit.export import ExportError
from tritonkit.export.convert.graph import tensor_specs
from tritonkit.export.repository.config import graph_inputs, model_config

OPT_BATCH = 8
MAX_SEQUENCE = 128  # profile range for text models; longer requests need a rebuilt engine
OPT_SEQUENCE = 32
SAMPLE_BATCH = 4
TOKEN_RANGE = (1000, 2000)  # ordinary word pieces for sample token ids (MiniLM vocabulary ids)


def missing_requirements() -> list[str]:
    """What this host lacks for TensorRT, each with its fix; empty when it can build engines."""
    missing = []
    if shutil.which("nvidia-smi") is None:
        missing.append("no NVIDIA GPU (nvidia-smi not found): build engines on a GPU host")
    for module, fix in (("tensorrt", "pip install '.[tensorrt]'"), ("polygraphy", "pip install '.[tensorrt]'")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} is not installed ({fix})")
    return missing


def profile_shapes(onnx_model, max_batch_size: int) -> dict[str, tuple[tuple, tuple, tuple]]:
    """(min, opt, max) shapes per input: batch 1..max_batch_size, sequence 1..128, fixed dims as they are."""
    shapes = {}
    for spec in tensor_specs(graph_inputs(onnx_model), batched=True, model_name="profile"):
        low = [1] + [1 if dim == -1 else dim for dim in spec.dims]
        opt = [min(OPT_BATCH, max_batch_size)] + [OPT_SEQUENCE if dim == -1 else dim for dim in spec.dims]
        high = [max_batch_size] + [MAX_SEQUENCE if dim == -1 else dim for dim in spec.dims]
        shapes[spec.name] = (tuple(low), tuple(opt), tuple(high))
    return shapes


def sample_inputs(onnx_model, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs within every profile: token ids, masks of ones, uniform floats."""
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in tensor_specs(graph_inputs(onnx_model), batched=True, model_name="sample"):
        shape = [SAMPLE_BATCH] + [OPT_SEQUENCE if dim == -1 else dim for dim in spec.dims]
        if spec.name == "attention_mask":
            feed[spec.name] = np.ones(shape, dtype=np.int64)
        elif spec.data_type == "TYPE_INT64":
            feed[spec.name] = rng.integers(*TOKEN_RANGE, size=shape, dtype=np.int64)
        else:
            feed[spec.name] = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
    return feed


def tensorrt_config(name: str, onnx_model, options, labels: tuple[str, ...]):
    """The ONNX model's config, turned into a TensorRT plan on the GPU."""
    config = model_config(name, onnx_model, options, labels=labels)
    config.ClearField("backend")
    config.ClearField("parameters")  # ONNX Runtime thread settings mean nothing to TensorRT
    config.platform = "tensorrt_plan"
    config.instance_group[0].kind = config.instance_group[0].KIND_GPU
    return config


def build_engine(onnx_path: Path, engine_path: Path, shapes: dict) -> None:
    """Builds and saves an FP16 engine with one optimization profile covering ``shapes``."""
    from polygraphy.backend.trt import (
        CreateConfig,
        Profile,
        engine_from_network,
        network_from_onnx_path,
        save_engine,
    )

    profile = Profile()
    for name, (low, opt, high) in shapes.items():
        profile.add(name, min=low, opt=opt, max=high)
    engine = engine_from_network(network_from_onnx_path(str(onnx_path)),
                                 config=CreateConfig(fp16=True, profiles=[profile]))
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    save_engine(engine, str(engine_path))


def run_engine(engine_path: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    with TrtRunner(EngineFromBytes(BytesFromPath(str(engine_path)))) as runner:
        return {name: np.asarray(value) for name, value in runner.infer(feed).items()}


def require_tensorrt() -> None:
    missing = missing_requirements()
    if missing:
        raise ExportError("TensorRT export cannot run here: " + "; ".join(missing))


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

    from tritonkit.export.repository.config import to_pbtxt, write_if_changed
    from tritonkit.export.verify import check_parity, run_onnx

    onnx_path = cpu_repository / spec.name / "1" / "model.onnx"
    if not onnx_path.is_file():
        raise ExportError(f"{spec.name}: {onnx_path} is missing; run `make export` before --tensorrt")
    onnx_model = onnx.load(onnx_path)
    engine_path = gpu_repository / spec.name / "1" / "model.plan"
    build_engine(onnx_path, engine_path, profile_shapes(onnx_model, spec.serving.max_batch_size))
    feed = sample_inputs(onnx_model)
    errors = check_parity(f"{spec.name} (TensorRT FP16)", run_engine(engine_path, feed), run_onnx(onnx_model, feed),
                          spec.fp16_atol, "ONNX Runtime")
    config = tensorrt_config(spec.name, onnx_model, spec.serving, spec.labels)
    write_if_changed(gpu_repository / spec.name / "config.pbtxt", to_pbtxt(config))
    if spec.labels:
        write_if_changed(gpu_repository / spec.name / "labels.txt", "".join(f"{label}\n" for label in spec.labels))
    return errors
