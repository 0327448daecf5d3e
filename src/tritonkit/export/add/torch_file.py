"""A TorchScript file (``torch.jit.save``) or a torch.export program (``torch.export.save``, ``.pt2``).

Both are converted to ONNX with a dynamic batch axis, traced on ``--sample``'s first rows (the sample gives the
shapes and dtypes: a module's signature declares neither). Inputs are named after ``forward``'s parameters;
outputs ``output`` (one tensor), ``output_0``, ``output_1``... (a tuple) or by key (a dict), or ``--output-names``.
A program whose code fixes the batch size is served unbatched, with that batch size.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from tritonkit.export import SourceError
from tritonkit.export.add import detect
from tritonkit.export.add.sample import InputSpec, match_inputs, synthesize
from tritonkit.export.add.source import Loaded
from tritonkit.export.convert import torch2onnx
from tritonkit.export.convert.graph import dims_of, graph_inputs

ATOL = 1e-4  # float32 PyTorch against float32 ONNX Runtime: kernels sum in other orders
TRACE_ROWS = 2  # the exporters specialize a batch of 1: trace on two rows


def load(path: Path, kind: str, sample: dict[str, np.ndarray] | None, output_names: list[str] | None) -> Loaded:
    import torch

    if sample is None:
        raise SourceError(f"a {kind} model needs --sample FILE.npz: its example inputs give the shapes and dtypes "
                          "the export traces (numpy.savez(path, name=array) with one array per forward() argument)")
    module, names, program = _read(path, kind)
    rows = match_inputs(sample, [InputSpec(name, None) for name in names], f"the {kind} model's forward()")
    examples = [torch.from_numpy(np.repeat(array[:1], TRACE_ROWS, axis=0) if len(array) < TRACE_ROWS
                                 else array[:TRACE_ROWS]) for array in rows.values()]
    with torch.no_grad():
        try:
            defaults, _ = torch2onnx.flat_outputs(module(*examples))
        except TypeError as exc:
            raise SourceError(f"{path}: {exc}") from None
        except Exception as exc:
            raise SourceError(f"{path}: the model fails on the sample's rows ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}); check the sample's shapes and dtypes") from None
    outputs = _output_names(defaults, output_names)
    try:
        if kind == detect.TORCHSCRIPT:
            onnx_model = torch2onnx.convert_torchscript(module, examples, input_names=names, output_names=outputs)
        else:
            onnx_model, _ = torch2onnx.convert_program(program, examples, input_names=names, output_names=outputs)
    except Exception as exc:
        raise SourceError(f"{path}: the {kind} model cannot be converted to ONNX ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:240]}); an operator without an ONNX translation is "
                          "the usual cause: rewrite it with standard torch operations") from None
    batch = _fixed_batch(onnx_model)
    notes = () if batch is None else (f"the program fixes the batch at {batch} rows: served without batching",)
    reference = _reference(module, names, outputs, batch)
    return Loaded(kind, onnx_model, [InputSpec(name, array.dtype, (-1, *array.shape[1:]))
                                     for name, array in rows.items()],
                  reference, f"PyTorch ({kind})", synthesize(rows), ATOL, notes)


def _read(path: Path, kind: str):
    import torch

    try:
        if kind == detect.TORCHSCRIPT:
            module = torch.jit.load(str(path), map_location="cpu").eval()
            return module, [argument.name for argument in module.forward.schema.arguments][1:], None
        program = torch.export.load(str(path))
        module = program.module()
        return module, list(inspect.signature(module.forward).parameters), program
    except Exception as exc:
        raise SourceError(f"{path} cannot be loaded as {kind} ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:200]}); save it again with this torch version") from None


def _output_names(defaults: list[str], given: list[str] | None) -> list[str]:
    if not given:
        return defaults
    if len(given) != len(defaults):
        raise SourceError(f"--output-names names {len(given)} outputs but the model returns {len(defaults)} "
                          f"({', '.join(defaults)})")
    return list(given)


def _fixed_batch(onnx_model) -> int | None:
    sizes = {dims_of(value)[0] for value in graph_inputs(onnx_model) if dims_of(value)}
    return None if sizes == {-1} else min(sizes)


def _reference(module, names: list[str], outputs: list[str], batch: int | None):
    import torch

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(feeds[names[0]])
        step = batch or rows
        parts = []
        with torch.no_grad():
            for start in range(0, rows, step):
                result = module(*(torch.from_numpy(np.ascontiguousarray(feeds[name][start : start + step]))
                                  for name in names))
                parts.append([tensor.numpy() for tensor in torch2onnx.flat_outputs(result)[1]])
        return {name: np.concatenate([part[index] for part in parts]) for index, name in enumerate(outputs)}

    return run
