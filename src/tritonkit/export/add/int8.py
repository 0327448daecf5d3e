"""``--int8``: a dynamic-quantized version beside FP32, and how far its answers are from FP32's.

Agreement is measured on the parity rows, per output, by what fits it:
  - class scores (a float output of two or more columns named like logits, probabilities or scores): the share
    of rows whose top class agrees, at least ``MIN_LABEL_AGREEMENT``;
  - other vectors (embeddings): the smallest cosine between a row's FP32 and INT8 answers, at least ``MIN_COSINE``;
  - a number a row (a regression): the largest error as a share of the FP32 answers' range, at most
    ``MAX_RELATIVE_ERROR``;
  - labels (strings, integers): the share of rows that agree, at least ``MIN_LABEL_AGREEMENT``.
Below its bar the INT8 version is refused, with the figure; nothing is written.
"""

from __future__ import annotations

import re

import numpy as np

from tritonkit.export import ExportError

MIN_LABEL_AGREEMENT = 0.98  # at most one row in fifty may change its class
MIN_COSINE = 0.99  # issue 14's encoder bar is 0.995 with SmoothQuant; plain dynamic INT8 of small encoders: ~0.99
MAX_RELATIVE_ERROR = 0.05  # of the output's range over the parity rows
SCORE_NAMES = re.compile(r"logit|prob|score|class", re.IGNORECASE)


def measure(fp32: dict[str, np.ndarray], int8: dict[str, np.ndarray]) -> tuple[dict[str, float], list[str]]:
    """(figures by ``<output> <measure>``, the bars missed as sentences)."""
    figures: dict[str, float] = {}
    missed: list[str] = []
    for name, reference in fp32.items():
        got = int8[name]
        if reference.dtype.kind != "f":
            share = float(np.mean(np.all((got == reference).reshape(len(got), -1), axis=1)))
            figures[f"{name} labels agree"] = round(share, 6)
            if share < MIN_LABEL_AGREEMENT:
                missed.append(f"{name}: labels agree on {share:.3f} of rows, below {MIN_LABEL_AGREEMENT}")
            continue
        flat_ref, flat_got = reference.reshape(len(reference), -1), got.reshape(len(got), -1)
        if flat_ref.shape[1] >= 2 and SCORE_NAMES.search(name):
            share = float(np.mean(flat_ref.argmax(axis=1) == flat_got.argmax(axis=1)))
            figures[f"{name} labels agree"] = round(share, 6)
            if share < MIN_LABEL_AGREEMENT:
                missed.append(f"{name}: the top class agrees on {share:.3f} of rows, below {MIN_LABEL_AGREEMENT}")
        elif flat_ref.shape[1] >= 2:
            norms = np.linalg.norm(flat_ref, axis=1) * np.linalg.norm(flat_got, axis=1)
            cosine = float(np.min(np.sum(flat_ref * flat_got, axis=1) / np.maximum(norms, 1e-12)))
            figures[f"{name} min cosine"] = round(cosine, 6)
            if cosine < MIN_COSINE:
                missed.append(f"{name}: min cosine to FP32 {cosine:.4f}, below {MIN_COSINE}")
        else:
            spread = float(np.ptp(flat_ref)) or 1.0
            relative = float(np.max(np.abs(flat_ref - flat_got))) / spread
            figures[f"{name} max error / range"] = round(relative, 6)
            if relative > MAX_RELATIVE_ERROR:
                missed.append(f"{name}: max error {relative:.3f} of the output's range, above {MAX_RELATIVE_ERROR}")
    return figures, missed


def quantized(onnx_model, model: str):
    """The plain dynamic INT8 graph; ``ExportError`` when the graph has nothing INT8 could make smaller."""
    from tritonkit.export.convert.quantize import quantize_int8

    try:
        graph = quantize_int8(onnx_model)
    except Exception as exc:
        raise ExportError(f"{model}: INT8 quantization failed ({type(exc).__name__}: {str(exc)[:200]}); add it "
                          "without --int8") from None
    integer_ops = {"MatMulInteger", "DynamicQuantizeLinear", "ConvInteger", "QLinearMatMul", "DynamicQuantizeLSTM",
                   "QGemm", "QAttention", "DequantizeLinear"}
    if not any(node.op_type in integer_ops for node in graph.graph.node):
        raise ExportError(f"{model}: --int8 found no dense layer (MatMul, Gemm, Conv) to quantize in this graph: "
                          "an INT8 version would be the FP32 one; add it without --int8")
    return graph
