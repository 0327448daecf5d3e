"""PyTorch -> ONNX with the dynamo exporter, named inputs, outputs and dynamic axes."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence

from tritonkit.export.graph import BATCH_AXIS, SEQUENCE_AXIS


def convert(
    module,
    example_inputs: Sequence,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    max_sequence: int | None = None,
    opset: int = 18,
):
    """Exports ``module`` with a dynamic ``batch`` axis (dim 0) on every input and output.

    Args:
        module: a ``torch.nn.Module`` in eval mode.
        example_inputs: one example tensor per input (batch of at least 2, sequence of at least 2).
        input_names: ONNX names of the inputs, in ``forward`` order.
        output_names: ONNX names of the outputs.
        max_sequence: when set, dim 1 of every input is a dynamic ``sequence`` axis up to this length.

    Returns:
        onnx.ModelProto
    """
    import onnx
    import torch

    batch = torch.export.Dim(BATCH_AXIS, min=1)
    axes = {0: batch}
    if max_sequence is not None:
        axes[1] = torch.export.Dim(SEQUENCE_AXIS, min=1, max=max_sequence)
    dynamic_shapes = tuple(dict(axes) for _ in example_inputs)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(
            module,
            tuple(example_inputs),
            path,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            external_data=False,
        )
        return onnx.load(path)


@contextlib.contextmanager
def _quiet():
    """The exporter narrates every step and warns about torchvision ops we never use; keep progress readable.

    Errors still raise; only chatter is silenced.
    """
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="# The axis name")  # inputs sharing one sequence axis
            warnings.filterwarnings("ignore", message="The tensor attributes")  # nn.LSTM's flattened weights
            yield
    finally:
        registration.setLevel(level)
