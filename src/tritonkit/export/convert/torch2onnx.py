"""PyTorch -> ONNX with named inputs, outputs and dynamic axes.

The dynamo exporter is the default. ``torchscript=True`` takes the TorchScript tracer instead, for the
transformer encoders: ONNX Runtime runs its graph of MiniLM 5-12 % faster on one CPU (27.1 against 24.6
rows/s at batch 1 and 128 tokens, 144.4 against 137.8 at 16; AMD EPYC, ORT 1.31; scripts/minilm_variants.py),
because ORT's own load-time optimizations recognize more of it (bench/results/TUNING.md, step 6).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence

from tritonkit.export.convert.graph import BATCH_AXIS, SEQUENCE_AXIS


def convert(
    module,
    example_inputs: Sequence,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    max_sequence: int | None = None,
    opset: int = 18,
    torchscript: bool = False,
):
    """Exports ``module`` with a dynamic ``batch`` axis (dim 0) on every input and output.

    Args:
        module: a ``torch.nn.Module`` in eval mode.
        example_inputs: one example tensor per input (batch of at least 2, sequence of at least 2).
        input_names: ONNX names of the inputs, in ``forward`` order.
        output_names: ONNX names of the outputs.
        max_sequence: when set, dim 1 of every input is a dynamic ``sequence`` axis up to this length.
        opset: the ONNX opset (the TorchScript exporter's newest is 17; it is capped there).
        torchscript: trace with the TorchScript exporter instead of dynamo.

    Returns:
        onnx.ModelProto
    """
    import onnx
    import torch

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = os.path.join(tmp, "model.onnx")
        names = {"input_names": list(input_names), "output_names": list(output_names), "external_data": False}
        if torchscript:
            axes = {0: BATCH_AXIS, **({1: SEQUENCE_AXIS} if max_sequence is not None else {})}
            dynamic_axes = {name: dict(axes) for name in input_names}
            dynamic_axes.update({name: {0: BATCH_AXIS} for name in output_names})
            torch.onnx.export(module, tuple(example_inputs), path, dynamic_axes=dynamic_axes,
                              opset_version=min(opset, 17), dynamo=False, **names)
            exported = onnx.load(path)
            _fix_output_dims(exported, module, example_inputs)
            return exported
        dims = {0: torch.export.Dim(BATCH_AXIS, min=1)}
        if max_sequence is not None:
            dims[1] = torch.export.Dim(SEQUENCE_AXIS, min=1, max=max_sequence)
        torch.onnx.export(module, tuple(example_inputs), path, dynamic_shapes=tuple(dict(dims) for _ in example_inputs),
                          opset_version=opset, dynamo=True, **names)
        return onnx.load(path)


def _fix_output_dims(model, module, example_inputs) -> None:
    """The tracer leaves some fixed output dims symbolic (an encoder's 384 after L2 normalization); the config
    generator needs them fixed, so they are read off the module's own output on the examples."""
    import torch

    with torch.no_grad():
        results = flat_outputs(module(*example_inputs))[1]
    for output, result in zip(model.graph.output, results, strict=True):
        for dim, size in list(zip(output.type.tensor_type.shape.dim, result.shape, strict=True))[1:]:
            dim.dim_value = int(size)  # replaces a dim_param; the batch axis (0) stays dynamic


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
            # TorchScript tracing of transformers' attention: shape checks that are constant for our inputs
            # (no causal mask, no key cache); parity at every length is checked after export.
            warnings.filterwarnings("ignore", message="Converting a tensor to a Python")
            warnings.filterwarnings("ignore", message="Exporting aten::index operator")
            warnings.filterwarnings("ignore", message="no signature found for")  # a TorchScript module's forward
            warnings.filterwarnings("ignore", message="Exporting a model while it is in training mode")  # .module()
            yield
    finally:
        registration.setLevel(level)


def convert_torchscript(module, example_inputs: Sequence, *, input_names: Sequence[str],
                        output_names: Sequence[str], opset: int = 17):
    """A TorchScript module (``torch.jit.load``) -> ONNX with a dynamic ``batch`` axis on every input and output.

    The TorchScript exporter reads scripted and traced modules alike; its newest opset is 17.
    """
    import onnx
    import torch

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = os.path.join(tmp, "model.onnx")
        axes = {name: {0: BATCH_AXIS} for name in [*input_names, *output_names]}
        torch.onnx.export(module, tuple(example_inputs), path, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=axes, opset_version=min(opset, 17),
                          dynamo=False, external_data=False)
        exported = onnx.load(path)
    _fix_output_dims(exported, module, example_inputs)
    return exported


def convert_program(program, example_inputs: Sequence, *, input_names: Sequence[str], output_names: Sequence[str],
                    opset: int = 18):
    """A ``torch.export`` program -> (ONNX, batched).

    The program is exported again with a dynamic batch axis on every input (``batched`` True); a program whose code
    fixes the batch size (it reshapes with a literal batch, say) keeps the shapes it was exported with and is
    served unbatched (``batched`` False).
    """
    import onnx
    import torch

    module = program.module()
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = os.path.join(tmp, "model.onnx")
        names = {"input_names": list(input_names), "output_names": list(output_names), "external_data": False}
        try:
            dims = tuple({0: torch.export.Dim(BATCH_AXIS, min=1)} for _ in example_inputs)
            torch.onnx.export(module, tuple(example_inputs), path, dynamic_shapes=dims, opset_version=opset,
                              dynamo=True, **names)
            batched = True
        except Exception:  # the batch axis is specialized in the program: export it as it is
            torch.onnx.export(program, (), path, opset_version=opset, dynamo=True, **names)
            batched = False
        return onnx.load(path), batched


def flat_outputs(result) -> tuple[list[str], list]:
    """A module's result as (default names, tensors): one tensor ``output``; a tuple ``output_0``...; a dict by key.

    Raises:
        TypeError: a result that is not tensors, a flat tuple or list of them, or a dict of them.
    """
    import torch

    if isinstance(result, torch.Tensor):
        return ["output"], [result]
    if isinstance(result, dict) and all(isinstance(value, torch.Tensor) for value in result.values()):
        return [str(key) for key in result], list(result.values())
    if isinstance(result, (tuple, list)) and result and all(isinstance(value, torch.Tensor) for value in result):
        return [f"output_{index}" for index in range(len(result))], list(result)
    raise TypeError(f"the model returns {type(result).__name__}; return a tensor, a tuple of tensors or a dict of "
                    "tensors (nested results cannot become named Triton outputs)")
