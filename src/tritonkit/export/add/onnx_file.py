"""An ONNX file: checked (checker, shape inference, an ONNX Runtime session), served as it is.

Its reference is ONNX's own reference implementation (``onnx.reference``, numpy, written apart from ONNX
Runtime), so parity compares two implementations of the same graph. Where that evaluator lacks an operator or
would take too long, the reference is ONNX Runtime with every graph optimization off (so the served, optimized
session is still compared with a plain one), and the card says so.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tritonkit.export import SourceError
from tritonkit.export.add import detect
from tritonkit.export.add.sample import InputSpec, match_inputs, synthesize
from tritonkit.export.add.source import Loaded
from tritonkit.export.convert.graph import dims_of, graph_inputs
from tritonkit.export.verify import run_onnx, session

ATOL = 1e-4  # two float32 implementations of one graph: summation orders differ
REFERENCE_BUDGET_S = 2.0  # onnx.reference on one row; slower graphs are checked against unoptimized ORT
GENERATED_ROWS = 32  # rows made up from the graph's shapes when no --sample is given (float inputs only)


def load(path: Path, sample: dict[str, np.ndarray] | None) -> Loaded:
    import onnx

    try:
        model = onnx.load(str(path))  # external data from the file's folder
    except Exception as exc:
        raise SourceError(f"{path} cannot be read as ONNX ({exc}); export it again") from None
    check(model, path)
    inputs = input_specs(model)
    if sample is not None:
        holdout = synthesize(match_inputs(sample, inputs, "the ONNX graph"))
    else:
        holdout = generated_rows(inputs, path)
    reference, reference_name = reference_of(model, holdout)
    notes = () if reference_name == "onnx.reference" else (
        f"checked against {reference_name}: onnx.reference could not run this graph quickly",)
    return Loaded(detect.ONNX, model, inputs, reference, reference_name, holdout, ATOL, notes)


def check(model, path: Path) -> None:
    """onnx.checker, strict shape inference and an ONNX Runtime session; SourceError naming the problem."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise SourceError(f"{path} is not a valid ONNX graph: {first}; export it again (onnx.checker must "
                          "pass)") from None
    try:
        session(model)
    except Exception as exc:
        raise SourceError(f"{path}: ONNX Runtime cannot run this graph: {_first_line(exc)}; export it with "
                          "standard ONNX operators (a lower opset, or without custom ops)") from None


def input_specs(model) -> list[InputSpec]:
    from onnx import helper

    specs = []
    for value in graph_inputs(model):
        elem = value.type.tensor_type.elem_type
        specs.append(InputSpec(value.name, np.dtype(helper.tensor_dtype_to_np_dtype(elem)), tuple(dims_of(value))))
    return specs


def generated_rows(inputs: list[InputSpec], path: Path) -> dict[str, np.ndarray]:
    """Normal random rows where every input is floats of known shape; else the sample is needed."""
    blocked = [spec.name for spec in inputs if spec.dtype.kind != "f" or -1 in spec.dims[1:]]
    if blocked:
        raise SourceError(f"{path}: inputs {blocked} are not floats of a fixed shape, so rows cannot be made up for "
                          "parity; pass --sample FILE.npz with example rows (numpy.savez(path, name=array))")
    rng = np.random.default_rng(0)
    fixed = {spec.dims[0] for spec in inputs if spec.dims and spec.dims[0] > 0}
    count = GENERATED_ROWS * (fixed.pop() if len(fixed) == 1 else 1)  # whole batches of a fixed batch size
    return {spec.name: rng.normal(size=(count, *spec.dims[1:])).astype(spec.dtype) for spec in inputs}


def reference_of(model, holdout: dict[str, np.ndarray]):
    """(run, name): onnx.reference when it runs one row within the budget, else unoptimized ONNX Runtime."""
    from onnx.reference import ReferenceEvaluator

    first = {name: array[:1] for name, array in holdout.items()}
    names = [output.name for output in model.graph.output]
    try:
        evaluator = ReferenceEvaluator(model)
        start = time.perf_counter()
        evaluator.run(None, first)
        fast = time.perf_counter() - start <= REFERENCE_BUDGET_S
    except Exception:
        fast = False
    if fast and _batch_of(model) is None:  # a fixed batch runs in chunks: run_onnx does that
        return (lambda feeds: dict(zip(names, evaluator.run(None, feeds), strict=True))), "onnx.reference"
    return (lambda feeds: run_onnx(model, feeds, optimized=False)), "ONNX Runtime without graph optimizations"


def _batch_of(model) -> int | None:
    sizes = {dims_of(value)[0] for value in graph_inputs(model) if dims_of(value)}
    return sizes.pop() if len(sizes) == 1 and -1 not in sizes else None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "implementation" in line or "not a registered" in line or "Unrecognized" in line:
            return line.strip()[:300]
    return text.splitlines()[0][:300] if text else type(exc).__name__
