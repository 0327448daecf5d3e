"""ONNX Runtime as a Python-based Triton backend, for the embedded server.

Triton uses ``<backend-directory>/onnxruntime/model.py`` for every model whose config says
``backend: "onnxruntime"`` when no native ``libtriton_onnxruntime.so`` is there. The same
``config.pbtxt`` therefore runs unchanged on the NGC container (native C++ backend) and on the
embedded server built from the ``nvidia-pytriton`` wheel (this file).

What it honours from the model config, with the native backend's names:
  - ``default_model_filename`` (default ``model.onnx``) in the version folder;
  - ``parameters``: ``intra_op_thread_count`` (at most the CPUs the server may use, its CPU quota included),
    ``inter_op_thread_count``, ``execution_mode`` (``0`` sequential, ``1`` parallel);
  - ``max_batch_size``: for batchable models, requests whose non-batch shapes agree are
    concatenated and run in one ``session.run``; results are split back per request.

A request that fails gets its own error response; the other requests of the batch still answer.
Each ``execute`` is marked busy for the watchdog (``tritonkit.steps.heartbeat``), which reloads a stuck one.
"""

import json
import os
from collections import defaultdict

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

from tritonkit.cpus import usable_cpus
from tritonkit.steps.heartbeat import Heartbeat  # the watchdog's view of a stub stuck in execute

_THREAD_PARAMETERS = {
    "intra_op_thread_count": "intra_op_num_threads",
    "inter_op_thread_count": "inter_op_num_threads",
}
_EXECUTION_MODES = {"0": ort.ExecutionMode.ORT_SEQUENTIAL, "1": ort.ExecutionMode.ORT_PARALLEL}


def session_options(parameters):
    """Builds ONNX Runtime session options from a Triton model config's ``parameters``."""
    options = ort.SessionOptions()
    for key, value in parameters.items():
        text = value.get("string_value", "").strip()
        if key in _THREAD_PARAMETERS:
            if not text.isdigit():
                raise ValueError(f"parameter {key}={text!r} must be a non-negative integer (0 = ORT default)")
            setattr(options, _THREAD_PARAMETERS[key], int(text))
        elif key == "execution_mode":
            if text not in _EXECUTION_MODES:
                raise ValueError(f"parameter execution_mode={text!r} must be 0 (sequential) or 1 (parallel)")
            options.execution_mode = _EXECUTION_MODES[text]
    # Never more intra-op threads than CPUs this process may use (taskset, cpusets, a container's CPU quota):
    # ORT's threads spin while they wait, so extra ones only steal the CPU from the threads doing the work.
    cpus = usable_cpus()
    if options.intra_op_num_threads == 0 or options.intra_op_num_threads > cpus:
        options.intra_op_num_threads = cpus
    return options


def _error_code(exc):
    # ORT reports bad data (out-of-range ids, wrong ranks) as InvalidArgument: that is the client's fault.
    if type(exc).__name__ in ("InvalidArgument", "ValueError"):
        return pb_utils.TritonError.INVALID_ARG
    return pb_utils.TritonError.INTERNAL


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        if not os.path.isfile(path):
            raise pb_utils.TritonModelException(f"{path} is missing; run `make export` to produce it")
        self._heartbeat = Heartbeat()
        self._session = ort.InferenceSession(
            path, sess_options=session_options(config.get("parameters", {})), providers=["CPUExecutionProvider"]
        )
        self._batched = config.get("max_batch_size", 0) > 0
        self._input_names = [tensor["name"] for tensor in config["input"]]
        self._outputs = [
            (tensor["name"], pb_utils.triton_string_to_numpy(tensor["data_type"])) for tensor in config["output"]
        ]

    def execute(self, requests):
        responses = [None] * len(requests)
        with self._heartbeat.busy():
            for indices, feeds in self._groups(requests, responses):
                self._run_group(indices, feeds, responses)
        return responses

    def _groups(self, requests, responses):
        """Groups requests that can share one session.run: same non-batch shape for every input."""
        groups = defaultdict(list)
        for index, request in enumerate(requests):
            feed = {}
            for name in self._input_names:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                if tensor is None:
                    responses[index] = _error_response(f"input {name!r} is missing", pb_utils.TritonError.INVALID_ARG)
                    break
                feed[name] = tensor.as_numpy()
            else:
                key = tuple(feed[name].shape[1:] for name in self._input_names) if self._batched else index
                groups[key].append((index, feed))
        for members in groups.values():
            yield [index for index, _ in members], [feed for _, feed in members]

    def _run_group(self, indices, feeds, responses):
        try:
            if len(feeds) == 1:
                outputs = self._run(feeds[0])
                responses[indices[0]] = self._response(outputs)
                return
            merged = {name: np.concatenate([feed[name] for feed in feeds]) for name in self._input_names}
            outputs = self._run(merged)
        except Exception as exc:
            if len(feeds) == 1:
                responses[indices[0]] = _error_response(f"onnxruntime: {exc}", _error_code(exc))
                return
            # One request spoiled the batch: run each alone so only the bad one gets the error.
            for index, feed in zip(indices, feeds, strict=False):
                self._run_group([index], [feed], responses)
            return
        offsets = np.cumsum([len(feed[self._input_names[0]]) for feed in feeds])[:-1]
        pieces = [np.split(array, offsets) for array in outputs]
        for position, index in enumerate(indices):
            responses[index] = self._response([piece[position] for piece in pieces])

    def _run(self, feed):
        return self._session.run([name for name, _ in self._outputs], feed)

    def _response(self, arrays):
        tensors = [
            pb_utils.Tensor(name, np.ascontiguousarray(array, dtype=dtype))
            for (name, dtype), array in zip(self._outputs, arrays, strict=False)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)


def _error_response(message, code):
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
