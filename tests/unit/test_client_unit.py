"""Client pieces that need no server: options, backoff, error translation, request encoding, and the shared
call logic (batch splitting, retries, admin headers, shared memory) run by both Client and AsyncClient against
a fake tritonclient transport."""

import asyncio
import inspect
import subprocess
import sys

import aiohttp
import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

import tritonkit.client as client_package
import tritonkit.client._base as base_module
import tritonkit.client.client as client_module
from tritonkit import catalog
from tritonkit.client import AsyncClient, Client, ClientOptions, codec
from tritonkit.client.cli import table
from tritonkit.client.errors import (
    ClientClosed,
    ClientError,
    Forbidden,
    InvalidInput,
    ModelNotFound,
    ServerUnavailable,
    Timeout,
    translate,
)
from tritonkit.server import settings as server_settings

BATCH_LIMIT = 4


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempt in range(10):
        bound = min(client_module.BACKOFF_CAP_S, client_module.BACKOFF_BASE_S * 2**attempt)
        samples = [client_module.backoff_s(attempt) for _ in range(200)]
        assert min(samples) >= 0.0 and max(samples) <= bound
        assert len(set(samples)) > 100  # jittered, not a fixed delay


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("400", "inference request batch-size must be <= 64 for 'x'", InvalidInput),
        ("StatusCode.INVALID_ARGUMENT", "in ensemble 'text_sentiment', TEXT row 0 is empty", InvalidInput),
        ("400", "Request for unknown model: 'nope' is not found", ModelNotFound),
        ("403", "This API is restricted, expecting header 'triton-admin-key'", Forbidden),
        ("StatusCode.UNAVAILABLE", "This protocol is restricted, expecting header 'x'", Forbidden),
        ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", ServerUnavailable),
        ("503", "Server not ready", ServerUnavailable),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", Timeout),
        ("500", "failed to parse the request JSON buffer", ClientError),
    ],
)
def test_server_errors_translate_to_the_client_tree(status, message, expected):
    error = translate(InferenceServerException(msg=message, status=status))
    assert type(error) is expected and error.message.startswith(message)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), ServerUnavailable),
        (aiohttp.ServerDisconnectedError(), ServerUnavailable),  # a pooled connection the server closed
        (TimeoutError("timed out"), Timeout),
        (asyncio.TimeoutError(), Timeout),  # what asyncio.wait_for raises (not the builtin before 3.11)
        (RuntimeError("surprise"), ClientError),
    ],
)
def test_network_errors_translate_to_unavailable_and_timeout(raised, expected):
    assert type(translate(raised)) is expected


def test_invalid_input_knows_the_batch_limit():
    assert InvalidInput("inference request batch-size must be <= 32 for 'm'").batch_limit == 32
    assert InvalidInput("TEXT row 0 is empty").batch_limit is None


def test_admin_headers_agree_with_the_server():
    assert client_module.ADMIN_HEADER == server_settings.ADMIN_HEADER
    assert client_module.GRPC_ADMIN_HEADER == server_settings.GRPC_ADMIN_HEADER


def test_codec_encodes_texts_and_checks_rows():
    assert codec.texts_input("café")["TEXT"].tolist() == [["café".encode()]]
    assert codec.rows_input([0.0] * 10, 10)["FEATURES"].shape == (1, 10)
    with pytest.raises(ValueError, match="rows must have 30 features each, got shape \\(1, 10\\)"):
        codec.rows_input([0.0] * 10, 30)
    with pytest.raises(TypeError, match="an image must be bytes, a path or a PIL image, not int"):
        codec.images_input([3])


def test_predictions_pair_labels_with_probabilities():
    outputs = {"LABEL": np.array([[b"positive"]], dtype=object), "PROBABILITIES": np.array([[0.25, 0.75]])}
    (prediction,) = codec.predictions(outputs, catalog.SENTIMENT_LABELS)
    assert prediction.label == "positive" and prediction.confidence == 0.75


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"protocol": "tcp"}, "protocol='tcp'; use 'http' or 'grpc'"),
        ({"timeout_s": 0}, "timeout_s=0; use a positive number of seconds"),
        ({"retries": -1}, "retries=-1; use 0 \\(no retry\\) or more"),
        ({"url": "http://"}, "url is empty; use host:port"),
    ],
)
def test_client_refuses_bad_options_and_names_the_fix(options, message):
    with pytest.raises(ValueError, match=message):
        Client(**{"url": "localhost:8000", **options})


def test_options_normalise_the_url_and_pick_the_admin_header():
    options = ClientOptions(url="http://localhost:8000/", protocol="grpc", admin_key="k" * 16)
    assert options.url == "localhost:8000"
    assert options.admin_headers() == {client_module.GRPC_ADMIN_HEADER: "k" * 16}
    assert ClientOptions(admin_key="k" * 16).admin_headers() == {client_module.ADMIN_HEADER: "k" * 16}
    assert ClientOptions().admin_headers() == {}


def test_async_client_has_every_call_of_client_with_the_same_parameters():
    public = {name for name in dir(Client) if not name.startswith("_")}
    assert public == {name for name in dir(AsyncClient) if not name.startswith("_")}
    for name in public:
        sync_member, async_member = getattr(Client, name), getattr(AsyncClient, name)
        if callable(sync_member):
            assert inspect.iscoroutinefunction(async_member), name
            assert inspect.signature(sync_member).parameters == inspect.signature(async_member).parameters, name


def test_async_client_outside_an_event_loop_names_the_fix():
    with pytest.raises(RuntimeError, match="needs a running event loop: create it inside a coroutine"):
        AsyncClient("localhost:8000")


def test_package_exports_agree_with_all():
    assert sorted(client_package.__all__) == sorted(client_package._EXPORTS)
    for name in client_package.__all__:
        assert getattr(client_package, name).__name__ == name


def test_client_imports_no_heavy_framework_and_nothing_else_of_tritonkit():
    code = ("import sys, tritonkit.client.cli, tritonkit.client.aio, tritonkit.client.client; "
            "heavy = {'torch', 'transformers', 'tensorrt', 'onnxruntime'} & set(sys.modules); assert not heavy, heavy; "
            "ours = {m for m in sys.modules if m.startswith('tritonkit.')}; "
            "other = {m for m in ours if not m.startswith(('tritonkit.client', 'tritonkit.catalog'))}; "
            "assert not other, other")
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0


def test_table_aligns_columns_and_shortens_long_cells():
    text = table([{"name": "m", "value": 0.5, "vector": [0.1, 0.2, 0.3, 0.4, 0.5]}], ["name", "value", "vector"])
    header, rule, row = text.splitlines()
    assert header.split() == ["name", "value", "vector"] and set(rule.replace(" ", "")) == {"-"}
    assert "0.5000" in row and row.endswith("...]")


# -- the shared call logic, through both clients, against a fake transport ----------------------------------


class FakeResult:
    def __init__(self, outputs):
        self._outputs = outputs

    def as_numpy(self, name):
        return self._outputs[name]

    def get_response(self):
        return {"outputs": [{"name": name} for name in self._outputs]}


class FakeTransport:
    """tritonclient's InferenceServerClient, in memory: doubles X, refuses batches above BATCH_LIMIT rows,
    and fails the first ``failures`` calls as if the server were down."""

    def __init__(self):
        self.calls = []
        self.failures = 0
        self.registered = set()

    def _record(self, method, **kwargs):
        self.calls.append((method, kwargs))
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError(111, "Connection refused")

    def infer(self, model, inputs, **kwargs):
        self._record("infer", rows=inputs[0].shape()[0], **kwargs)
        if inputs[0].shape()[0] > BATCH_LIMIT:
            raise InferenceServerException(f"inference request batch-size must be <= {BATCH_LIMIT} for '{model}'",
                                           status="400")
        if model == "broken":
            raise InferenceServerException("X row 0 is empty", status="400")
        raw = inputs[0]._get_binary_data()
        if raw is None:  # shared memory: the data stays in the region
            return FakeResult({"Y": np.zeros((inputs[0].shape()[0], 1), np.float32)})
        data = np.frombuffer(raw, np.float32).reshape(inputs[0].shape())
        return FakeResult({"Y": data * 2})

    def get_model_config(self, model, **kwargs):
        self._record("get_model_config", **kwargs)
        return {"config": {"name": model}} if kwargs.get("as_json") else {"name": model}

    def load_model(self, model, **kwargs):
        self._record("load_model", **kwargs)

    def is_server_ready(self, **kwargs):
        self._record("is_server_ready", **kwargs)
        return True

    def register_system_shared_memory(self, name, key, size, **kwargs):
        self._record("register_system_shared_memory", **kwargs)
        self.registered.add(name)

    def unregister_system_shared_memory(self, name, **kwargs):
        self._record("unregister_system_shared_memory", **kwargs)
        self.registered.discard(name)

    def close(self):
        pass


class AsyncFakeTransport:
    """The same fake behind coroutines, as tritonclient's aio clients are."""

    def __init__(self, fake):
        self.fake = fake

    def __getattr__(self, name):
        async def call(*args, **kwargs):
            return getattr(self.fake, name)(*args, **kwargs)

        return call


class FakeClient(Client):
    def _connect(self):
        return FakeTransport()


class FakeAsyncClient(AsyncClient):
    def _connect(self):
        return AsyncFakeTransport(FakeTransport())


class SyncFacade:
    """A FakeAsyncClient driven from synchronous test code, so one test body serves both clients."""

    def __init__(self, **options):
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(options))
        self.fake = self._client._client.fake

    @staticmethod
    async def _make(options):
        return FakeAsyncClient("localhost:8000", **options)

    def __getattr__(self, name):
        member = getattr(self._client, name)
        if not inspect.iscoroutinefunction(member):
            return member
        return lambda *args, **kwargs: self._loop.run_until_complete(member(*args, **kwargs))

    def shutdown(self):
        self._loop.run_until_complete(self._client.close())
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def connect(request, monkeypatch):
    """connect(**options) -> a client over a FakeTransport (``.fake``), blocking or asyncio; no backoff waits."""
    monkeypatch.setattr(base_module, "backoff_s", lambda attempt: 0.0)
    made = []

    def connect(**options):
        if request.param == "sync":
            client = FakeClient("localhost:8000", **options)
            client.fake = client._client
        else:
            client = SyncFacade(**options)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.shutdown() if isinstance(client, SyncFacade) else client.close()


def _rows(n):
    return {"X": np.arange(n, dtype=np.float32).reshape(n, 1)}


def _infer_rows(fake):
    return [kwargs["rows"] for method, kwargs in fake.calls if method == "infer"]


def test_infer_splits_above_the_learnt_batch_limit(connect):
    client = connect()
    out = client.infer("m", _rows(10), outputs=["Y"])
    np.testing.assert_array_equal(out["Y"], _rows(10)["X"] * 2)
    assert _infer_rows(client.fake) == [10, 4, 4, 2]  # refused once, then split
    client.fake.calls.clear()
    client.infer("m", _rows(6))  # every output when none is named
    assert _infer_rows(client.fake) == [4, 2]  # the limit is remembered


def test_infer_refuses_inputs_that_are_not_arrays(connect):
    with pytest.raises(ValueError, match="inputs is empty"):
        connect().infer("m", {})
    with pytest.raises(ValueError, match="input 'X' is a list; pass a numpy array"):
        connect().infer("m", {"X": [[1.0]]})


def test_calls_retry_while_the_server_is_unavailable_then_give_up(connect):
    client = connect(retries=2)
    client.fake.failures = 2
    assert client.infer("m", _rows(1))["Y"].shape == (1, 1)  # two refusals, then the answer
    client.fake.failures = 3
    with pytest.raises(ServerUnavailable, match="Connection refused"):
        client.infer("m", _rows(1))


def test_invalid_input_is_never_retried(connect):
    client = connect(retries=3)
    with pytest.raises(InvalidInput, match="X row 0 is empty"):
        client.infer("broken", _rows(1))
    assert _infer_rows(client.fake) == [1]


def test_is_ready_is_false_when_the_server_cannot_be_reached(connect):
    client = connect(retries=0)
    assert client.is_ready()
    client.fake.failures = 1
    assert not client.is_ready()


@pytest.mark.parametrize(("protocol", "header"), [("http", "triton-admin-key"),
                                                    ("grpc", "triton-grpc-protocol-triton-admin-key")])
def test_admin_calls_carry_the_key_under_the_protocols_header(connect, protocol, header):
    client = connect(protocol=protocol, admin_key="k" * 16)
    client.load("m")
    assert client.config("m") == {"name": "m"}  # gRPC's {"config": ...} unwrapped
    method, kwargs = client.fake.calls[0]
    assert method == "load_model" and kwargs["headers"] == {header: "k" * 16}
    assert ("client_timeout" in kwargs) == (protocol == "grpc")  # gRPC gets a deadline the server sees
    anonymous = connect(protocol=protocol)
    anonymous.load("m")
    assert anonymous.fake.calls[0][1]["headers"] == {}  # without a key: no header at all


def test_closed_client_refuses_calls(connect):
    client = connect()
    client.close()
    with pytest.raises(ClientClosed, match="Client is closed; create a new one"):
        client.infer("m", _rows(1))


def test_shared_memory_region_is_unregistered_after_success_and_failure(connect):
    client = connect(admin_key="k" * 16)
    assert client.infer_with_shared_memory("m", _rows(2), outputs=["Y"])["Y"].shape == (2, 1)
    with pytest.raises(InvalidInput, match="X row 0 is empty"):
        client.infer_with_shared_memory("broken", _rows(2))
    methods = [method for method, _ in client.fake.calls]
    assert methods.count("register_system_shared_memory") == methods.count("unregister_system_shared_memory") == 2
    assert client.fake.registered == set()
