"""The pure parts of the Python-based onnxruntime backend (batching and errors run against the real server)."""

import importlib.util
import os
import sys

import onnxruntime as ort
import pytest

from tritonkit.server.supervisor.embedded import BACKENDS_SOURCE, pytriton_root


@pytest.fixture(scope="module")
def backend():
    sys.path.insert(0, str(pytriton_root() / "backends" / "python"))  # triton_python_backend_utils
    spec = importlib.util.spec_from_file_location("ort_backend_model", BACKENDS_SOURCE / "onnxruntime" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.pop(0)


def _parameters(**values):
    return {key: {"string_value": value} for key, value in values.items()}


def test_session_options_take_thread_counts_from_config_parameters(backend):
    options = backend.session_options(
        _parameters(intra_op_thread_count="2", inter_op_thread_count="1", execution_mode="1")
    )
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL


def test_session_options_ignore_parameters_of_other_backends(backend):
    options = backend.session_options(_parameters(enable_mem_arena="1"))
    assert options.intra_op_num_threads == len(os.sched_getaffinity(0))  # unset: one thread per usable CPU


def test_session_options_never_ask_for_more_threads_than_usable_cpus(backend):
    cpus = len(os.sched_getaffinity(0))
    assert backend.session_options(_parameters(intra_op_thread_count=str(cpus + 3))).intra_op_num_threads == cpus
    assert backend.session_options(_parameters(intra_op_thread_count="1")).intra_op_num_threads == 1


def test_session_options_keep_within_a_containers_cpu_quota(backend, monkeypatch):
    monkeypatch.setattr(backend, "usable_cpus", lambda: 1)  # as tritonkit.cpus answers under `--cpus 1`
    assert backend.session_options(_parameters(intra_op_thread_count="2")).intra_op_num_threads == 1
    assert backend.session_options(_parameters()).intra_op_num_threads == 1


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (_parameters(intra_op_thread_count="two"), "intra_op_thread_count='two' must be a non-negative integer"),
        (_parameters(execution_mode="2"), "execution_mode='2' must be 0"),
    ],
)
def test_session_options_raise_when_parameter_is_bad(backend, parameters, message):
    with pytest.raises(ValueError, match=message):
        backend.session_options(parameters)
