"""Every export ends here: run the ONNX graph with ONNX Runtime and compare it with the source model."""

from __future__ import annotations

import numpy as np

from tritonkit.export import ParityError


def run_onnx(onnx_model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs the graph once on CPU with ONNX Runtime; returns every output by name."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=False))


def check_parity(
    model_name: str, actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], atol: float, source: str
) -> dict[str, float]:
    """Compares ONNX Runtime outputs with the source framework's, output by output.

    Returns:
        The max absolute error per output.

    Raises:
        ParityError: an output is missing, has another shape, or differs by more than ``atol``; the
            message names the output, the error, the worst row and the tolerance.
    """
    errors = {}
    for name, value in expected.items():
        if name not in actual:
            raise ParityError(f"{model_name}: the ONNX graph has no output {name!r} (it has {sorted(actual)})")
        got = np.asarray(actual[name], dtype=np.float64)
        reference = np.asarray(value, dtype=np.float64)
        if got.shape != reference.shape:
            raise ParityError(f"{model_name}: output {name!r} has shape {got.shape}, {source} gives {reference.shape}")
        difference = np.nan_to_num(np.abs(got - reference), nan=np.inf)  # a NaN is the worst error
        worst = float(difference.max()) if difference.size else 0.0
        if worst > atol:
            row = int(np.unravel_index(np.argmax(difference), difference.shape)[0])
            raise ParityError(
                f"{model_name}: output {name!r} differs from {source} by {worst:.3g} (max abs, row {row}); "
                f"the tolerance is {atol:g}. The export is wrong or the tolerance in export/builtin/registry.py is too tight"
            )
        errors[name] = worst
    return errors
