"""The front's admission limits come from the served configs; a refusal is counted out; gRPC names the model cheaply."""


import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from tritonkit import paths
from tritonkit.server.command import PrivatePorts, front_command
from tritonkit.server.front import __main__ as front
from tritonkit.server.front import admission
from tritonkit.server.front.grpc_guard import model_name
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


def test_a_model_admits_what_its_queue_holds(limits):
    # Not more: an instance does not always run a full batch, and a request the front admits must find room.
    for model in ("lstm_sentiment_classifier", "minilm_sentiment", "digit_resnet", "diabetes_regressor"):
        assert limits[model] == _config(model).dynamic_batching.default_queue_policy.max_queue_size > 0, model


def test_a_pipeline_admits_what_its_bottleneck_does(limits):
    for ensemble in ("lstm_sentiment", "text_sentiment", "text_embedding", "digit_classifier"):
        steps = [step.model_name for step in _config(ensemble).ensemble_scheduling.step]
        assert limits[ensemble] == min(limits[step] for step in steps), ensemble
    # The LSTM pipeline refuses at the classifier's limit, before its tokenizer works on the request.
    assert limits["lstm_sentiment"] < limits["lstm_tokenizer"]


def test_a_request_to_a_pipeline_counts_against_every_step_it_shares():
    # Two pipelines share step "a" (as text_sentiment and text_sentiment_fp32 share minilm_tokenizer).
    gate = admission.Admission({"a": 2, "p": 5, "q": 5}, {"p": ["a"], "q": ["a"]})
    assert gate.enter("p") is None and gate.enter("q") is None
    refusal = gate.enter("q")
    assert refusal is not None and "q is overloaded" in refusal and "its step a" in refusal
    assert gate.enter("a") is not None  # a direct call to the step shares its limit too
    assert gate.in_flight == {"p": 1, "q": 1, "a": 2}  # refusals counted nothing
    gate.leave("p")
    assert gate.enter("a") is None and gate.in_flight["a"] == 2


def test_the_served_pipelines_count_against_their_steps():
    steps = admission.steps(paths.repositories())
    assert steps["lstm_sentiment"] == ["lstm_tokenizer", "lstm_sentiment_classifier"]
    assert steps["text_sentiment"] == steps["text_sentiment_fp32"] == ["minilm_tokenizer", "minilm_sentiment"]


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


def test_the_front_reads_the_limits_of_the_repositories_the_launcher_names(limits):
    settings = ServerSettings(admin_key="a" * 24)
    args = front.parse_args(front_command(settings, PrivatePorts(1, 2, 3))[3:])
    assert args.repositories == [path.resolve() for path in paths.repositories()]
    gate = admission.Admission.from_repositories(args.repositories)
    assert gate.limits == limits and gate.steps["text_embedding"] == ("minilm_tokenizer", "minilm_encoder")
