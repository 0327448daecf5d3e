"""``--sample FILE.npz``: example inputs of a user's model, and the rows synthesized around them for parity.

The file holds one array per input, named by input name (``np.savez(path, features=x)``) or in order
(``np.savez(path, x)``: ``arr_0``, ``arr_1``...; one array for a model of one input, whatever its name); the first
axis is the batch. It is read without pickle
(``allow_pickle=False``): a sample never runs code. Text models take a ``TEXT`` array of strings.

Parity runs on the sample's rows and on rows made from them (``synthesize``): each float row with a little
noise (a share of its column's spread), each integer row with values the sample shows at that position, each
string row as it is; so a graph that matches the source only on the exact rows given does not pass.
"""

from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path

import numpy as np

from tritonkit.export import SourceError

POSITIONAL = re.compile(r"^arr_(\d+)$")  # what np.savez names arrays passed without names
NOISE_SHARE = 0.05  # noise of 5 % of a column's spread: near the sample, not a copy of it
SYNTHETIC_PER_ROW = 2
MAX_SYNTHETIC_ROWS = 256  # parity on a few hundred rows takes seconds even for a transformer


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One input of the user's model as the source declares it (dims: -1 where free, the batch axis included; no
    dtype or dims: whatever the sample holds, as for a PyTorch module, whose signature declares neither)."""

    name: str
    dtype: np.dtype | None
    dims: tuple[int, ...] = ()


def read_sample(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file, in the file's order; a clear ``SourceError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"--sample {path}: no such file; write one with numpy.savez('{path.name}', name=array)")
    if not zipfile.is_zipfile(path):
        raise SourceError(f"--sample {path} is not a .npz file; write one with numpy.savez('{path.name}', name=array)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(f"--sample {path} is not a .npz file ({exc}); write one with "
                          f"numpy.savez('{path.name}', name=array)") from None
    except ValueError as exc:  # object arrays need pickle
        raise SourceError(f"--sample {path}: {exc}; save numbers or strings (dtype 'U'), not Python objects") from None
    if not arrays:
        raise SourceError(f"--sample {path} holds no arrays; write one with numpy.savez('{path.name}', name=array)")
    for name, array in arrays.items():
        if array.ndim == 0 or len(array) == 0:
            raise SourceError(f"--sample {path}: array {name!r} has shape {list(array.shape)}; the first axis is the "
                              "batch and must hold at least one row")
    return arrays


def match_inputs(arrays: dict[str, np.ndarray], inputs: list[InputSpec], source: str) -> dict[str, np.ndarray]:
    """The sample's arrays by the model's input names: by name, or in order when the file names none of them.

    Each array is cast to its input's dtype when that loses nothing (float64 -> float32 for a float32 input,
    int32 -> int64); its shape must fit the input's dims; every input needs the same number of rows.
    """
    names = [spec.name for spec in inputs]
    if len(arrays) == 1 and len(inputs) == 1 and names[0] not in arrays:
        arrays = {names[0]: next(iter(arrays.values()))}  # one array for one input: its name does not matter
    if all(POSITIONAL.match(name) for name in arrays) and not set(arrays) & set(names):
        if len(arrays) != len(inputs):
            raise SourceError(f"the sample holds {len(arrays)} unnamed arrays and {source} takes {len(inputs)} inputs "
                              f"({', '.join(names)}); save one array per input, e.g. numpy.savez(path, "
                              f"{', '.join(f'{n}=...' for n in names)})")
        ordered = sorted(arrays, key=lambda name: int(POSITIONAL.match(name).group(1)))
        arrays = dict(zip(names, (arrays[name] for name in ordered), strict=True))
    missing = [name for name in names if name not in arrays]
    extra = [name for name in arrays if name not in names]
    if missing or extra:
        raise SourceError(f"the sample's arrays {sorted(arrays)} do not match {source}'s inputs {names}"
                          + (f" (missing {missing})" if missing else "") + (f" (not inputs: {extra})" if extra else "")
                          + "; name each array after its input")
    matched = {spec.name: _fit(arrays[spec.name], spec, source) for spec in inputs}
    rows = {name: len(array) for name, array in matched.items()}
    if len(set(rows.values())) > 1:
        raise SourceError(f"the sample's inputs have different row counts {rows}; the first axis is the batch and "
                          "every input needs one entry per row")
    return matched


def _fit(array: np.ndarray, spec: InputSpec, source: str) -> np.ndarray:
    if spec.dims and len(spec.dims) != array.ndim:
        raise SourceError(f"sample array {spec.name!r} has shape {list(array.shape)} ({array.ndim} axes) but "
                          f"{source}'s input {spec.name!r} has {len(spec.dims)} axes {list(spec.dims)}; reshape it "
                          "(the first axis is the batch)")
    for axis, (size, want) in enumerate(zip(array.shape, spec.dims, strict=False)):
        if want not in (-1, size) and not (axis == 0 and want == 1 and size >= 1):
            raise SourceError(f"sample array {spec.name!r} has shape {list(array.shape)} but {source}'s input "
                              f"{spec.name!r} needs {list(spec.dims)} (axis {axis} is {want}); fix the sample")
    return array if spec.dtype is None else cast(array, spec.dtype, spec.name)


def cast(array: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``array`` as ``dtype`` where the values survive; SourceError where they do not (floats into integers)."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind in "OUS" or array.dtype.kind in "OUS":
        if dtype.kind in "OUS" and array.dtype.kind in "OUS":
            return array.astype(dtype)
        raise SourceError(f"sample array {name!r} is {array.dtype} but the input takes {dtype}; save it as {dtype}")
    if array.dtype.kind == "f" and dtype.kind in "iub":
        raise SourceError(f"sample array {name!r} holds floats ({array.dtype}) but the input takes {dtype}; "
                          f"save it as {dtype}")
    converted = array.astype(dtype)
    if dtype.kind in "iu" and not np.array_equal(converted, array):
        raise SourceError(f"sample array {name!r} has values that do not fit {dtype}; save it as {dtype}")
    return converted


def synthesize(arrays: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """The sample's rows followed by rows made around them (see the module docstring), at most
    ``MAX_SYNTHETIC_ROWS`` new ones."""
    rng = np.random.default_rng(seed)
    rows = len(next(iter(arrays.values())))
    count = min(MAX_SYNTHETIC_ROWS, SYNTHETIC_PER_ROW * rows)
    picks = rng.integers(0, rows, size=count)
    made = {}
    for name, array in arrays.items():
        base = array[picks]
        if array.dtype.kind == "f":
            spread = array.std(axis=0) if rows > 1 else np.abs(array[0])
            spread = np.where(spread > 0, spread, np.maximum(np.abs(array).mean(axis=0), 1e-3))
            made[name] = (base + rng.normal(size=base.shape) * NOISE_SHARE * spread).astype(array.dtype)
        elif array.dtype.kind in "iu" and rows > 1:
            # each position takes a value the sample has at that position in some row: ids stay valid ids
            donors = rng.integers(0, rows, size=base.shape)
            flat_index = np.indices(base.shape[1:]) if base.ndim > 1 else ()
            made[name] = array[(donors, *flat_index)] if base.ndim > 1 else array[donors]
        else:
            made[name] = base.copy()
    return {name: np.concatenate([array, made[name]]) for name, array in arrays.items()}
