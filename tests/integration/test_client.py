"""The client and its CLI against the real server, over HTTP and gRPC: every helper and command,
each exception from a real server error, and retries with a late and a stopped server.

The client cases run twice more: through ``Client`` and through ``AsyncClient`` (the ``connect`` fixture), with
the same test body, so both keep every option, call and helper."""

import asyncio
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ADMIN_KEY, ASSETS, LOOKUP_TABLE, free_ports, launch, write_lookup_model
from PIL import Image

import tritonkit.client._base as base_module
from tritonkit import paths
from tritonkit.client import (
    AsyncClient,
    Client,
    ClientClosed,
    Forbidden,
    InvalidInput,
    ModelNotFound,
    ServerUnavailable,
    Timeout,
)
from tritonkit.export.builtin import datasets, tabular, vision
from tritonkit.steps import imaging

pytestmark = pytest.mark.integration
LOOKUP_MAX_BATCH_SIZE = 16  # tests/assets/lookup_repository/lookup/config.pbtxt


def _url(server, protocol):
    return server.settings.http_url if protocol == "http" else server.settings.grpc_url


class AsyncAdapter:
    """An AsyncClient driven from synchronous test code. Its event loop runs on a thread of its own: the aiohttp
    session and the gRPC channel stay on the loop that made them, and any thread may call (the retry test does)."""

    def __init__(self, url, **options):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client = self._run(self._make(url, options))

    @staticmethod
    async def _make(url, options):
        return AsyncClient(url, **options)  # inside the loop: AsyncClient needs a running one

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name):
        member = getattr(self._client, name)
        if not inspect.iscoroutinefunction(member):
            return member
        return lambda *args, **kwargs: self._run(member(*args, **kwargs))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self._run(self._client.close())

    def shutdown(self):
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def connect(request):
    """``connect(url, **options)``: a Client, or an AsyncClient behind AsyncAdapter; closed at teardown."""
    made = []

    def connect(url, **options):
        made.append(Client(url, **options) if request.param == "sync" else AsyncAdapter(url, **options))
        return made[-1]

    yield connect
    for connection in made:
        if isinstance(connection, AsyncAdapter):
            connection.shutdown()
        else:
            connection.close()


@pytest.fixture
def triton(server, protocol, connect):
    return connect(_url(server, protocol), protocol=protocol, admin_key=ADMIN_KEY)


def _digit_png(index: int) -> bytes:
    image = Image.fromarray((255 - vision.digits().x_test[index][0] * 255).astype(np.uint8)).resize((48, 48))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_embed_returns_unit_vectors(triton):
    vectors = triton.embed(["a first sentence", "a second one"], model="text_embedding_fp32")
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(triton.embed("a first sentence", model="text_embedding_fp32")[0], vectors[0],
                               atol=1e-6)
    # INT8 (the default) scales activations per batch, so a row moves a little with its batch-mates
    int8 = triton.embed(["a first sentence", "a second one"])
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert np.sum(int8 * vectors, axis=1).min() >= 0.99
    assert float(triton.embed("a first sentence")[0] @ int8[0]) >= 0.995  # 0.9989 measured
    with pytest.raises(ValueError, match="use one of text_embedding, text_embedding_fp32"):
        triton.embed("x", model="minilm_encoder")


@pytest.mark.parametrize("model", ["text_sentiment", "text_sentiment_fp32", "lstm_sentiment"])
def test_sentiment_returns_predictions(triton, model):
    found = triton.sentiment(["The food was delicious and the waiter was kind.", "It broke after two days."],
                             model=model, version=1)
    assert [p.label for p in found] == ["positive", "negative"]
    assert set(found[0].probabilities) == {"negative", "positive"}
    assert found[0].confidence == max(found[0].probabilities.values()) > 0.5


def test_classify_digit_takes_bytes_paths_and_pil_images(triton, tmp_path):
    png = _digit_png(0)
    path = tmp_path / "digit.png"
    path.write_bytes(png)
    found = triton.classify_digit([png, path, Image.open(io.BytesIO(png))])
    assert len({p.label for p in found}) == 1 and found[0].label == str(vision.digits().y_test[0])


@pytest.fixture(scope="module")
def tabular_references():
    """The source models' answers on the held-out rows (trained once for the module)."""
    diabetes, cancer = datasets.diabetes(), datasets.breast_cancer()
    model = tabular.train_cancer_classifier(cancer)
    with torch.no_grad():
        probability = model(torch.from_numpy(cancer.x_test)).numpy()[:, 0]
    return diabetes, tabular.train_diabetes_pipeline(diabetes).predict(diabetes.x_test), cancer, probability


def test_tabular_helpers_match_the_source_models_and_split_large_batches(triton, tabular_references):
    diabetes, expected, cancer, probability = tabular_references
    np.testing.assert_allclose(triton.predict_diabetes(diabetes.x_test), expected, atol=1e-4)
    np.testing.assert_allclose(triton.predict_diabetes(diabetes.x_test[0]), expected[:1], atol=1e-4)  # one row
    # 100 rows; max_batch_size is 64: the client splits
    np.testing.assert_allclose(triton.predict_cancer(cancer.x_test), probability, atol=1e-5)


def test_infer_splits_batches_above_max_batch_size(triton):
    index = (np.arange(40, dtype=np.int64) % 10).reshape(40, 1)
    out = triton.infer("lookup", {"INDEX": index})  # 40 rows: refused once, then sent as 16 + 16 + 8
    np.testing.assert_array_equal(out["VALUE"][:, 0], LOOKUP_TABLE[index[:, 0]])
    assert out["RUN_BATCH"].max() <= LOOKUP_MAX_BATCH_SIZE


def test_generic_infer_returns_every_output_of_a_version(triton):
    outputs = triton.infer("minilm_encoder", {"input_ids": np.array([[101, 7592, 102]]),
                                              "attention_mask": np.ones((1, 3), np.int64)}, version=2)
    assert list(outputs) == ["sentence_embedding"] and outputs["sentence_embedding"].shape == (1, 384)


def test_shared_memory_inputs_give_the_same_answer(triton):
    rows = datasets.diabetes().x_test[:8]
    through_memory = triton.infer_with_shared_memory("diabetes_regressor", {"FEATURES": rows}, outputs=["PREDICTION"])
    np.testing.assert_allclose(through_memory["PREDICTION"][:, 0], triton.predict_diabetes(rows), atol=1e-6)


def test_management_lists_models_config_metadata_and_statistics(triton):
    names = {m["name"]: m for m in triton.models()}
    assert names["text_sentiment"]["state"] == "READY"
    assert int(triton.config("digit_resnet")["max_batch_size"]) == 64
    assert triton.metadata("text_embedding")["name"] == "text_embedding"
    triton.predict_diabetes(datasets.diabetes().x_test[:1])
    (stats,) = triton.statistics("diabetes_regressor")
    assert int(stats["inference_count"]) > 0
    assert triton.server_metadata()["version"] == "2.51.0"


def test_errors_map_to_the_client_exceptions(server, protocol, triton, connect):
    with pytest.raises(ModelNotFound, match="unknown model"):
        triton.infer("no_such_model", {"X": np.zeros((1, 1), np.float32)})
    with pytest.raises(InvalidInput, match="TEXT row 0 is empty") as caught:
        triton.sentiment([""])
    assert "TEXT row 0 is empty" in caught.value.message  # the server's own words
    with pytest.raises(Forbidden, match="restricted"):
        connect(_url(server, protocol), protocol=protocol).models()
    with pytest.raises(Timeout, match=r"(?i)timeout|deadline exceeded"):
        connect(_url(server, protocol), protocol=protocol, timeout_s=0.001).embed(
            ["a sentence that takes longer than a millisecond to embed"] * 16)


def test_client_refuses_use_after_close(server, protocol, connect):
    connection = connect(_url(server, protocol), protocol=protocol)
    connection.close()
    with pytest.raises(ClientClosed, match="is closed; create a new one"):
        connection.embed("late")


def _count_backoffs(monkeypatch) -> list[int]:
    attempts = []
    original = base_module.backoff_s  # both clients take their backoff from the shared base
    monkeypatch.setattr(base_module, "backoff_s", lambda attempt: attempts.append(attempt) or original(attempt))
    return attempts


def test_invalid_input_is_never_retried(triton, monkeypatch):
    attempts = _count_backoffs(monkeypatch)
    with pytest.raises(InvalidInput, match="TEXT row 0 is empty"):
        triton.sentiment([""])
    assert attempts == []


@pytest.fixture(scope="module")
def lookup_repository(tmp_path_factory):
    repository = tmp_path_factory.mktemp("lookup") / "repo"
    shutil.copytree(ASSETS / "lookup_repository" / "lookup", repository / "lookup")
    write_lookup_model(repository / "lookup" / "1" / "model.onnx")
    return repository


def _lookup(connection, index: int = 3) -> float:
    return float(connection.infer("lookup", {"INDEX": np.array([[index]], np.int64)}, outputs=["VALUE"])["VALUE"][0, 0])


def test_retries_reach_a_server_that_starts_late_and_give_up_on_a_stopped_one(
        protocol, connect, lookup_repository, tmp_path, monkeypatch):
    ports = free_ports(3)
    url = f"127.0.0.1:{ports[0] if protocol == 'http' else ports[1]}"
    started = []
    attempts = _count_backoffs(monkeypatch)
    # The server is started from this thread, after the call began: a server's owner must outlive it
    # (tritonserver stops when the thread that started it ends, see tritonkit/server/process.py).
    with ThreadPoolExecutor(1) as pool, connect(url, protocol=protocol, retries=40, timeout_s=10) as patient:
        try:
            answer = pool.submit(_lookup, patient)
            time.sleep(1.5)
            started.append(launch(tmp_path / "late.log", [lookup_repository], ports))
            assert answer.result(timeout=120) == 4.5  # the server was not there when the call began
            assert attempts, "the call succeeded without a retry: the server was not late"
            assert started[0].stop() == 0
            attempts.clear()
            refused = r"(?i)cannot reach the server|failed to connect"  # HTTP: our words; gRPC: grpcio's
            with connect(url, protocol=protocol, retries=2) as hopeful, pytest.raises(ServerUnavailable,
                                                                                      match=refused):
                _lookup(hopeful)
            assert attempts == [0, 1]  # two retries with backoff, then the error
        finally:
            for launched in started:
                launched.stop()


@pytest.fixture(scope="module")
def explicit_server(lookup_repository, tmp_path_factory):
    """One server in MODEL_CONTROL=explicit for the module: each test leaves ``lookup`` loaded again."""
    launched = launch(tmp_path_factory.mktemp("explicit") / "explicit.log", [lookup_repository],
                      model_control="explicit")
    try:
        with Client(launched.settings.http_url, retries=0) as probe:
            probe.wait_until_ready(60)
        yield launched
    finally:
        launched.stop()


def test_load_and_unload_with_the_admin_key(explicit_server, protocol, connect):
    url = _url(explicit_server, protocol)
    with connect(url, protocol=protocol, admin_key=ADMIN_KEY) as admin:
        admin.unload("lookup")
        deadline = time.monotonic() + 30
        while any(m["name"] == "lookup" and m["state"] == "READY" for m in admin.models()):
            assert time.monotonic() < deadline, "lookup never unloaded"
            time.sleep(0.2)
        with pytest.raises(ModelNotFound, match="lookup"):
            _lookup(admin)
        admin.load("lookup")
        assert _lookup(admin) == 4.5
    with connect(url, protocol=protocol) as anonymous, pytest.raises(Forbidden, match="restricted"):
        anonymous.unload("lookup")


def test_async_client_serves_many_concurrent_requests(server, protocol):
    texts = [f"Review {i}: the staff were lovely and the food was great." for i in range(40)]

    async def run():
        async with AsyncClient(_url(server, protocol), protocol=protocol) as triton:
            return await asyncio.gather(*(triton.sentiment(text) for text in texts),
                                        triton.embed("one more"), triton.classify_digit(_digit_png(1)))

    *sentiments, embedding, digits = asyncio.run(run())
    assert all(result[0].label == "positive" for result in sentiments)
    assert embedding.shape == (1, 384) and digits[0].label == str(vision.digits().y_test[1])


def _cli(server, protocol, *args, stdin=None, admin=True):
    env = {**os.environ, "TRITON_URL": _url(server, protocol).removeprefix("http://")}
    env.pop("TRITON_ADMIN_KEY", None)
    if admin:
        env["TRITON_ADMIN_KEY"] = ADMIN_KEY
    done = subprocess.run([sys.executable, "-m", "tritonkit.client", "--protocol", protocol, *args], input=stdin,
                          capture_output=True, text=True, cwd=paths.root(), env=env, timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def test_cli_commands_print_tables_and_json(server, protocol, tmp_path):
    code, out, _ = _cli(server, protocol, "health")
    assert code == 0 and "2.51.0" in out and "True" in out
    code, out, _ = _cli(server, protocol, "models")
    assert code == 0 and "text_embedding" in out and "READY" in out
    code, out, _ = _cli(server, protocol, "embed", stdin="first line\nsecond line\n")
    assert code == 0 and out.count("384") == 2
    code, out, _ = _cli(server, protocol, "sentiment", "It broke after two days.", "--model", "lstm_sentiment",
                        "--json")  # a global option after the command
    assert code == 0 and json.loads(out)[0]["label"] == "negative"
    (tmp_path / "digit.png").write_bytes(_digit_png(2))
    code, out, _ = _cli(server, protocol, "digit", str(tmp_path / "digit.png"))
    assert code == 0 and f" {vision.digits().y_test[2]} " in out
    row = ",".join(f"{v:.6f}" for v in datasets.diabetes().x_test[0])
    code, out, _ = _cli(server, protocol, "diabetes", "--json", "--", row)  # global options after the command too
    assert code == 0 and json.loads(out)[0]["prediction"] == pytest.approx(184.3, abs=0.05)
    code, out, _ = _cli(server, protocol, "cancer", stdin=",".join(map(str, datasets.breast_cancer().x_test[0])) + "\n")
    assert code == 0 and "probability_benign" in out
    features = json.dumps({"FEATURES": [[0.0] * 10]})
    code, out, _ = _cli(server, protocol, "infer", "diabetes_regressor", "--inputs", features)
    assert code == 0 and "PREDICTION" in json.loads(out)
    code, out, _ = _cli(server, protocol, "stats", "diabetes_regressor")
    assert code == 0 and "avg_compute_ms" in out


def test_cli_errors_name_the_problem(server, protocol):
    code, _, err = _cli(server, protocol, "models", admin=False)
    assert code == 1 and "restricted" in err and "TRITON_ADMIN_KEY" in err
    code, _, err = _cli(server, protocol, "sentiment", "   ")
    assert code == 1 and "TEXT row 0 is empty" in err
    code, _, err = _cli(server, protocol, "diabetes", "1,2,3")
    assert code == 1 and "rows must have 10 features each" in err


def test_cli_load_and_unload(explicit_server, protocol):
    code, out, _ = _cli(explicit_server, protocol, "unload", "lookup")
    assert code == 0 and "unloaded" in out
    code, out, _ = _cli(explicit_server, protocol, "load", "lookup")
    assert code == 0 and "loaded" in out


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "tritonkit")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "sentiment" in done.stdout


def test_grpc_carries_messages_above_its_default_4_mb_limit(server):
    # A held-out digit drawn 1600 px tall on noisy colour paper: PNG cannot compress the noise (4-8 MB).
    digit = Image.open(io.BytesIO(_digit_png(3))).convert("L").resize((1600, 1600), Image.Resampling.BILINEAR)
    paper = np.random.default_rng(0).integers(200, 256, (1600, 1600, 3), dtype=np.uint8)
    drawn = (paper * (np.asarray(digit, np.float32)[..., None] / 255)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(drawn, "RGB").save(buffer, "PNG")
    assert 4 * 1024 * 1024 < len(buffer.getvalue()) < imaging.MAX_IMAGE_BYTES
    with Client(server.settings.grpc_url, protocol="grpc") as triton:
        (prediction,) = triton.classify_digit(buffer.getvalue())
    assert prediction.label == str(vision.digits().y_test[3])  # it arrived whole, and was read


@pytest.mark.slow
def test_client_extra_installs_and_works_on_its_own(server, tmp_path):
    venv = tmp_path / "client-only"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet", f"{paths.root()}[client]"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]
    listed = subprocess.run([python, "-m", "pip", "list"], capture_output=True, text=True, check=True).stdout
    installed = {line.split()[0] for line in listed.splitlines()[2:]}
    assert not {"torch", "transformers", "onnxruntime", "tensorrt"} & installed
    # One namespace: the project adds `tritonkit` to site-packages and no generic `client`, `server`, `export`...
    probe = ("import json, sys, sysconfig, tritonkit.client; from importlib.metadata import distribution; "
             "files = distribution('tritonkit').files; "
             "print(json.dumps(sorted({f.parts[0] for f in files if not f.parts[0].endswith(('.dist-info', '..'))})))")
    top_level = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert top_level.returncode == 0, top_level.stderr
    assert json.loads(top_level.stdout) == ["tritonkit"]
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert not {"client", "server", "export", "bench", "loadtest"} & {path.name for path in Path(site).iterdir()}
    command = [str(venv / "bin" / "tritonkit"), "sentiment", "Great food!", "--url", server.settings.http_url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 0 and "positive" in done.stdout, done.stderr
