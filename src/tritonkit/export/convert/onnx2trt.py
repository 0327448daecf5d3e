"""ONNX -> TensorRT FP16 engines with Polygraphy, for GPU hosts: one optimization profile over the batch and
sequence range, sample inputs within it, and a runner to check an engine (``builtin/tensorrt.py`` builds the GPU
repository from these).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tritonkit.export import ExportError
from tritonkit.export.convert.graph import graph_inputs, tensor_specs

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
