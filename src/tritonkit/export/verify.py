"""Every export ends here: run the ONNX graph with ONNX Runtime and compare it with the source model."""

from __future__ import annotations

import numpy as np

from tritonkit.export import ParityError


def session(onnx_model, *, optimized: bool = True):
    """An ONNX Runtime CPU session of the graph (``optimized=False``: without graph optimizations)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    return ort.InferenceSession(onnx_model.SerializeToString(), sess_options=options,
                                providers=["CPUExecutionProvider"])


def run_onnx(onnx_model, inputs: dict[str, np.ndarray], *, optimized: bool = True) -> dict[str, np.ndarray]:
    """Runs the graph on CPU with ONNX Runtime; returns every output by name.

    A graph with a fixed batch size ``B`` (an input whose first dim is a number) runs in chunks of ``B`` rows.
    """
    runner = session(onnx_model, optimized=optimized)
    names = [output.name for output in runner.get_outputs()]
    fixed = {value.shape[0] for value in runner.get_inputs() if value.shape and isinstance(value.shape[0], int)}
    rows = len(next(iter(inputs.values())))
    chunk = fixed.pop() if len(fixed) == 1 else rows
    if chunk <= 0 or rows % chunk:
        raise ParityError(f"the graph takes batches of exactly {chunk} rows but {rows} rows were given")
    parts = [runner.run(names, {name: array[start : start + chunk] for name, array in inputs.items()})
             for start in range(0, rows, chunk)]
    return {name: np.concatenate([part[index] for part in parts]) for index, name in enumerate(names)}


def check_parity(
    model_name: str, actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], atol: float, source: str
) -> dict[str, float]:
    """Compares ONNX Runtime outputs with the source framework's, output by output.

    Numbers are compared within ``atol``; strings and booleans (class labels) must be equal, their error being
    the share of rows that differ.

    Returns:
        The max absolute error per output (for labels, the share of rows that differ: 0).

    Raises:
        ParityError: an output is missing, has another shape, or differs by more than ``atol``; the
            message names the output, the error, the worst row and the tolerance.
    """
    errors = {}
    for name, value in expected.items():
        if name not in actual:
            raise ParityError(f"{model_name}: the ONNX graph has no output {name!r} (it has {sorted(actual)})")
        got, reference = np.asarray(actual[name]), np.asarray(value)
        if got.shape != reference.shape:
            raise ParityError(f"{model_name}: output {name!r} has shape {got.shape}, {source} gives {reference.shape}")
        if reference.dtype.kind in "OUSb" or got.dtype.kind in "OUSb":
            errors[name] = _label_errors(model_name, name, got, reference, source)
            continue
        difference = np.nan_to_num(np.abs(got.astype(np.float64) - reference.astype(np.float64)), nan=np.inf)
        worst = float(difference.max()) if difference.size else 0.0
        if worst > atol:
            row = int(np.unravel_index(np.argmax(difference), difference.shape)[0])
            raise ParityError(
                f"{model_name}: output {name!r} differs from {source} by {worst:.3g} (max abs, row {row}); "
                f"the tolerance is {atol:g}. The export is wrong or the tolerance is too tight (--atol, or the model's "
                "spec in export/builtin/registry.py)"
            )
        errors[name] = worst
    return errors


def _label_errors(model_name: str, name: str, got: np.ndarray, reference: np.ndarray, source: str) -> float:
    as_text = np.vectorize(lambda item: item.decode() if isinstance(item, bytes) else str(item), otypes=[object])
    same = as_text(got) == as_text(reference) if got.size else np.ones(0, dtype=bool)
    if not np.all(same):
        row = int(np.unravel_index(np.argmin(same), same.shape)[0])
        raise ParityError(f"{model_name}: output {name!r} differs from {source} in {int((~same).sum())} of "
                          f"{same.size} values (first at row {row}: {got.reshape(len(got), -1)[row].tolist()} "
                          f"against {reference.reshape(len(reference), -1)[row].tolist()}); labels must be equal")
    return 0.0
