"""The front's admission limits come from the served configs; a refusal is counted out; gRPC names the model cheaply."""

import json

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from tritonkit import paths
from tritonkit.server import admission
from tritonkit.server.command import PrivatePorts
from tritonkit.server.embedded import guard_command
from tritonkit.server.grpc_guard import model_name
from tritonkit.server.settings import ServerSettings


@pytest.fixture(scope="module")
def limits() -> dict[str, int]:
    return admission.limits(paths.repositories())


def _config(name: str):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    for repository in paths.repositories():
        path = repository / name / "config.pbtxt"
        if path.is_file():
            return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    raise AssertionError(f"no config for {name}")


def test_a_model_admits_its_queue_and_one_batch_per_instance(limits):
    config = _config("lstm_sentiment_classifier")
    queue = config.dynamic_batching.default_queue_policy.max_queue_size
    instances = sum(group.count for group in config.instance_group)
    assert limits["lstm_sentiment_classifier"] == queue + min(config.max_batch_size, queue) * instances


def test_a_pipeline_admits_what_its_bottleneck_does(limits):
    for ensemble in ("lstm_sentiment", "text_sentiment", "text_embedding", "digit_classifier"):
        steps = [step.model_name for step in _config(ensemble).ensemble_scheduling.step]
        assert limits[ensemble] == min(limits[step] for step in steps), ensemble
    # The LSTM pipeline refuses at the classifier's limit, before its tokenizer works on the request.
    assert limits["lstm_sentiment"] < limits["lstm_tokenizer"]


def test_every_public_endpoint_has_a_limit(limits):
    from tritonkit.loadtest.overload import ENDPOINTS

    assert set(ENDPOINTS) <= set(limits)


def test_a_refused_request_is_not_counted_and_leaving_frees_a_place():
    gate = admission.Admission({"m": 2})
    assert gate.enter("m") is None and gate.enter("m") is None
    refusal = gate.enter("m")
    assert refusal is not None and "m is overloaded: 2 requests are in flight" in refusal and "retry" in refusal
    assert gate.in_flight["m"] == 2
    gate.leave("m")
    assert gate.enter("m") is None
    assert gate.enter("unlimited") is None  # a model without a bounded queue is never refused here


def test_grpc_reads_the_model_name_without_parsing_the_tensors():
    request = service_pb2.ModelInferRequest(model_name="text_sentiment", model_version="1")
    request.raw_input_contents.append(np.arange(1000, dtype=np.float32).tobytes())
    assert model_name(request.SerializeToString()) == "text_sentiment"
    long_name = "m" * 300  # a two-byte length
    assert model_name(service_pb2.ModelInferRequest(model_name=long_name).SerializeToString()) == long_name
    assert model_name(service_pb2.ModelInferRequest(id="only-an-id").SerializeToString()) == ""


def test_the_launcher_gives_the_front_the_limits(limits):
    settings = ServerSettings(admin_key="a" * 24)
    argv = guard_command(settings, PrivatePorts(1, 2, 3))
    assert json.loads(argv[argv.index("--admission") + 1]) == limits
