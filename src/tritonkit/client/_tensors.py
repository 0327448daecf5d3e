"""Tensors on the wire, for both clients: numpy inputs to tritonclient requests, answers back to numpy.

No I/O here: building ``InferInput`` lists (inline or through a shared-memory region), decoding an
``InferResult``, and cutting a batch into chunks of at most the model's ``max_batch_size`` rows and joining
the answers again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
from tritonclient.utils import np_to_triton_dtype, serialize_byte_tensor, serialized_byte_size

Arrays = Mapping[str, npt.NDArray[Any]]
# Where one input lies in a shared-memory region: (region name, byte size, offset).
Placement = tuple[str, int, int]


def batch_rows(inputs: Arrays) -> int:
    """The batch size of ``inputs`` (the first axis of the first input), after checking they are arrays.

    Raises:
        ValueError: no input, an input that is not a numpy array, or one without a batch axis.
    """
    if not inputs:
        raise ValueError("inputs is empty; pass {'NAME': numpy array, ...} with the model's input names")
    for name, array in inputs.items():
        if not isinstance(array, np.ndarray):
            raise ValueError(f"input {name!r} is a {type(array).__name__}; pass a numpy array (np.asarray(...))")
        if array.ndim == 0:
            raise ValueError(f"input {name!r} is a scalar; give it a batch axis, e.g. np.array([[value]])")
    return len(next(iter(inputs.values())))


def chunks(inputs: Arrays, rows: int, limit: int) -> Iterator[Arrays]:
    """``inputs`` cut along the batch axis into pieces of at most ``limit`` rows (unchanged when they fit)."""
    if limit >= rows:
        yield inputs  # untouched: a model without batching may take inputs of different first axes
        return
    for start in range(0, rows, limit):
        yield {name: array[start : start + limit] for name, array in inputs.items()}


def merge(parts: Sequence[dict[str, npt.NDArray[Any]]]) -> dict[str, npt.NDArray[Any]]:
    """The answers to ``chunks`` joined along the batch axis again."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def triton_dtype(array: npt.NDArray[Any]) -> str:
    """Triton's name for the array's dtype (object arrays hold bytes: BYTES)."""
    if array.dtype == np.object_:
        return "BYTES"
    name = np_to_triton_dtype(array.dtype)
    if name is None:
        raise ValueError(f"dtype {array.dtype} has no Triton type; send text as bytes in an object array, "
                         "e.g. np.array([[b'text']], dtype=object)")
    return str(name)


def nbytes(array: npt.NDArray[Any]) -> int:
    """Bytes ``array`` takes on the wire: BYTES tensors carry a 4-byte length before each element."""
    if array.dtype == np.object_:
        return int(serialized_byte_size(serialize_byte_tensor(array)))
    return int(array.nbytes)


def placements(region: str, inputs: Arrays) -> dict[str, Placement]:
    """Each input's place in one shared-memory region, one after the other in ``inputs`` order."""
    places, offset = {}, 0
    for name, array in inputs.items():
        places[name] = (region, nbytes(array), offset)
        offset += nbytes(array)
    return places


def infer_inputs(module: ModuleType, inputs: Arrays, places: Mapping[str, Placement] | None = None) -> list[Any]:
    """tritonclient ``InferInput`` objects for ``inputs``: data inline, or a pointer into shared memory."""
    tensors = []
    for name, array in inputs.items():
        tensor = module.InferInput(name, list(array.shape), triton_dtype(array))
        if places is None:
            tensor.set_data_from_numpy(array)  # binary tensor data on HTTP too, not JSON lists
        else:
            tensor.set_shared_memory(*places[name])
        tensors.append(tensor)
    return tensors


def requested_outputs(module: ModuleType, outputs: Sequence[str] | None) -> list[Any] | None:
    """``InferRequestedOutput`` objects, or None for every output of the model."""
    return [module.InferRequestedOutput(name) for name in outputs] if outputs else None


def decode(result: Any, outputs: Sequence[str] | None, protocol: str) -> dict[str, npt.NDArray[Any]]:
    """The requested outputs of an ``InferResult`` (all of them when ``outputs`` is None) as numpy arrays."""
    names = list(outputs) if outputs else _output_names(result, protocol)
    return {name: result.as_numpy(name) for name in names}


def _output_names(result: Any, protocol: str) -> list[str]:
    response = result.get_response()
    if protocol == "grpc":  # a protobuf message
        return [output.name for output in response.outputs]
    return [output["name"] for output in response["outputs"]]
