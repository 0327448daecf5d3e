"""FP32 ONNX -> INT8 with ONNX Runtime dynamic quantization (weights INT8, activations quantized at run time).

Per-channel weight scales keep MiniLM's sentence embeddings within cosine ~0.98 of FP32 (per-tensor scales
gave 0.87-0.97 on short texts); the graph shrinks about 4x and runs 2-3x faster on AVX512-VNNI CPUs.
Weights use 7 bits (``reduce_range``): on CPUs without VNNI, ORT's u8 x s8 kernels add pairs of products in
16 bits, which 8-bit weights can saturate.

An ``Int8Scheme`` can go further for a transformer, where a few activation channels are far larger than the rest
(MiniLM: up to 17x the median channel, after LayerNorm and GELU) and one dynamic scale per tensor wastes most
of the 8 bits on them:

  - SmoothQuant (Xiao et al., 2023): each weight MatMul's input is divided by a per-channel factor
    ``s = max|X|^alpha / max|W|^(1 - alpha)`` (a ``Mul`` inserted before it) and the weight's rows are multiplied
    by it, so the product is unchanged in exact arithmetic and the outliers move into the weights, which are
    quantized per channel. ``max|X|`` comes from calibration inputs (training rows, never the held-out ones).
  - some MatMuls stay FP32 (``fp32_matmuls``): the ones whose error is still the largest.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tritonkit.export.progress import Progress

SMOOTH_SCALE_RANGE = (1e-2, 1e2)  # bounds of a smoothing factor: a dead channel must not blow up its weights


@dataclasses.dataclass(frozen=True)
class Int8Scheme:
    """How ``quantize_int8`` turns a graph into INT8.

    Attributes:
        smooth_alpha: SmoothQuant's migration strength in (0, 1); None for plain dynamic quantization.
        fp32_matmuls: MatMul nodes left in FP32, each named by a part of its node name
            (``"layer.0/output/dense/"``); every part must match at least one MatMul.
    """

    smooth_alpha: float | None = None
    fp32_matmuls: tuple[str, ...] = ()

    def __post_init__(self):
        if self.smooth_alpha is not None and not 0 < self.smooth_alpha < 1:
            raise ValueError(f"smooth_alpha={self.smooth_alpha}: use a value in (0, 1), e.g. 0.7, or None")

    @property
    def needs_calibration(self) -> bool:
        return self.smooth_alpha is not None

    def describe(self) -> str:
        """For the model card: ``ONNX INT8 (...)``."""
        parts = [f"SmoothQuant alpha {self.smooth_alpha:g}"] if self.smooth_alpha is not None else []
        parts.append("dynamic, per-channel, 7-bit weights")
        if self.fp32_matmuls:
            parts.append(f"{len(self.fp32_matmuls)} dense layers FP32")
        return f"ONNX INT8 ({', '.join(parts)})"


PLAIN = Int8Scheme()


def quantize_int8(onnx_model, scheme: Int8Scheme = PLAIN, calibration: Iterable[dict[str, np.ndarray]] = ()):
    """Returns the INT8 copy of ``onnx_model`` under ``scheme``.

    Args:
        onnx_model: the FP32 graph (``onnx.ModelProto``).
        scheme: see ``Int8Scheme``.
        calibration: input feeds (by graph input name) to measure activations on; needed for SmoothQuant.

    Raises:
        ValueError: a scheme that needs calibration got none, or an ``fp32_matmuls`` part matches no MatMul.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = list(calibration)
    if scheme.needs_calibration and not feeds:
        raise ValueError("this INT8 scheme smooths activations: pass calibration feeds (training rows)")
    quantization_logger = logging.getLogger()  # quantize_dynamic warns on the root logger
    level = quantization_logger.level
    quantization_logger.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source, prepared, target = (Path(tmp) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
            clean = onnx.ModelProto()
            clean.CopyFrom(onnx_model)
            # The exporter's value_info annotations confuse the quantizer's re-inference (a Linear's
            # [384] weight shape read as its [2] output); shapes are inferred afresh without them.
            del clean.graph.value_info[:]
            onnx.save(clean, source)
            # ORT's symbolic shape inference cannot follow the exporter's sequence axis; ONNX's own is enough.
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            graph = onnx.load(prepared)
            if scheme.smooth_alpha is not None:
                graph = smooth(graph, activation_maxima(graph, feeds), scheme.smooth_alpha)
                onnx.save(graph, prepared)
            # DefaultTensorType: types the quantizer cannot infer (outputs of ai.onnx.ml operators in a
            # scikit-learn graph) are float, as they are there.
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, nodes_to_exclude=fp32_nodes(graph, scheme.fp32_matmuls),
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            return onnx.load(target)
    finally:
        quantization_logger.setLevel(level)


def weight_matmuls(graph) -> list:
    """The MatMul nodes whose second input is a 2-D initializer (the dense layers)."""
    weights = {initializer.name for initializer in graph.graph.initializer if len(initializer.dims) == 2}
    return [node for node in graph.graph.node if node.op_type == "MatMul" and node.input[1] in weights]


def fp32_nodes(graph, parts: tuple[str, ...]) -> list[str]:
    names = [node.name for node in weight_matmuls(graph)]
    unmatched = [part for part in parts if not any(part in name for name in names)]
    if unmatched:
        raise ValueError(f"fp32_matmuls {unmatched} match no MatMul of the graph (it has {len(names)}, "
                         f"e.g. {names[:2]}); fix the names in the model's Int8Scheme")
    return [name for name in names if any(part in name for part in parts)]


def activation_maxima(graph, feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per input channel, the largest |value| of every dense layer's input over ``feeds``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(graph)
    inputs = sorted({node.input[0] for node in weight_matmuls(graph)})
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in inputs)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    progress = Progress(f"INT8 calibration: activations of {len(inputs)} dense-layer inputs", len(feeds), "feeds")
    for feed in feeds:
        for name, value in zip(inputs, session.run(inputs, feed), strict=True):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, channel_max), channel_max)
        progress.advance()
    return maxima


def smooth(graph, maxima: dict[str, np.ndarray], alpha: float):
    """SmoothQuant: ``X @ W`` becomes ``(X / s) @ (s W)`` for every dense layer (``s`` shared by the layers that
    read the same input, from the largest of their weights)."""
    from onnx import helper, numpy_helper

    initializers = {initializer.name: initializer for initializer in graph.graph.initializer}
    readers: dict[str, list] = {}
    for node in weight_matmuls(graph):
        readers.setdefault(node.input[0], []).append(node)
    inserted = {}
    for activation, nodes in readers.items():
        weights = [numpy_helper.to_array(initializers[node.input[1]]) for node in nodes]
        weight_max = np.max([np.abs(weight).max(axis=1) for weight in weights], axis=0)
        factor = np.clip(np.maximum(maxima[activation], 1e-5) ** alpha / np.maximum(weight_max, 1e-5) ** (1 - alpha),
                         *SMOOTH_SCALE_RANGE).astype(np.float32)
        inverse, smoothed = f"{activation}_smooth_inverse", f"{activation}_smoothed"
        graph.graph.initializer.append(numpy_helper.from_array(1 / factor, inverse))
        inserted[activation] = helper.make_node("Mul", [activation, inverse], [smoothed], name=f"{activation}_smooth")
        for node, weight in zip(nodes, weights, strict=True):
            scaled = f"{node.input[1]}_smoothed"
            graph.graph.initializer.append(numpy_helper.from_array(weight * factor[:, None], scaled))
            node.input[0], node.input[1] = smoothed, scaled
    nodes = []
    for node in graph.graph.node:  # each Mul right after the node that makes its input: the order stays valid
        nodes.append(node)
        nodes.extend(inserted.pop(output) for output in node.output if output in inserted)
    graph_inputs = [inserted.pop(name) for name in list(inserted)]  # a dense layer reading a graph input
    del graph.graph.node[:]
    graph.graph.node.extend([*graph_inputs, *nodes])
    used = {name for node in graph.graph.node for name in node.input}
    kept = [initializer for initializer in graph.graph.initializer if initializer.name in used]
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(kept)  # the unscaled weights are gone
    return graph
