"""The image, built and run for real with podman (issue #18), as `make image` and `make serve-container` do.

Built on the local base (scripts/local-base.sh: Debian with the embedded tritonserver; no NGC image can be pulled
here) from this checkout's exported repositories, then run read-only and non-root through
``python -m tritonkit.server --container``. podman and its helpers come from Debian's packages: installed where this
runs as root, otherwise the module skips with the reason. Bounded: about 3 minutes with the base made afresh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from conftest import ADMIN_KEY

from tritonkit import paths, tools
from tritonkit.client import Client
from tritonkit.loadtest import workload
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import ServerSettings
from tritonkit.server.supervisor import container as engines
from tritonkit.server.supervisor.procfs import child_running, stubs_of, tritonserver_of

BUILD_TIMEOUT_S = 900
READY_TIMEOUT_S = 180
STOP_BOUND_S = 30  # the launcher's drain (10 s) plus margin


class Container:
    """``python -m tritonkit.server --container`` running in the background, and what the tests need of it."""

    def __init__(self, settings: ServerSettings, name: str, log_path):
        self.settings, self.name, self.log_path = settings, name, log_path
        self.environment = {**os.environ, **engines.environment("podman"), "TRITON_ADMIN_KEY": ADMIN_KEY}
        argv = [sys.executable, "-m", "tritonkit.server", "--container", "--engine", "podman", "--name", name,
                "--http-port", str(settings.http_port), "--grpc-port", str(settings.grpc_port),
                "--metrics-port", str(settings.metrics_port)]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, env=self.environment, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=paths.root(), start_new_session=True)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], env=self.environment, capture_output=True, text=True, timeout=60,
                              check=check)

    def launcher_pid(self) -> int:
        """The launcher's pid as this machine sees it: the child of the container's init (podman --init)."""
        init = int(self.podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout.strip())
        launcher = child_running(init, b"tritonkit.server")
        assert launcher is not None, f"no launcher under the container's init {init}"
        return launcher

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def container(tmp_path_factory) -> Container:
    why = tools.install(["podman"])  # test setup: apt-get as root, else a skip that says why
    if why is not None:
        pytest.skip(why)
    log_path = tmp_path_factory.mktemp("container") / "container.log"
    environment = {**os.environ, **engines.environment("podman")}
    started = time.monotonic()
    build = subprocess.run([sys.executable, "-m", "tritonkit.server", "--container", "--engine", "podman",
                            "--build-only"], env=environment, capture_output=True, text=True, cwd=paths.root(),
                           timeout=BUILD_TIMEOUT_S, check=False)
    assert build.returncode == 0, f"the image did not build:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    print(f"\nimage built in {time.monotonic() - started:.0f} s")
    subprocess.run(["podman", "image", "prune", "-f"], env=environment, capture_output=True, timeout=120,
                   check=False)  # the images earlier builds left untagged
    http, grpc, metrics = free_ports(3)
    settings = ServerSettings(admin_key=ADMIN_KEY, http_port=http, grpc_port=grpc, metrics_port=metrics)
    running = Container(settings, f"tritonkit-test-{os.getpid()}", log_path)
    try:
        started = time.monotonic()
        with Client(settings.http_url, timeout_s=5) as client:
            client.wait_until_ready(READY_TIMEOUT_S)
        print(f"container ready {time.monotonic() - started:.1f} s after `podman run`")
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                running.process.kill()
        running.podman("rm", "-f", running.name, check=False)


def _served(url: str, protocol: str) -> dict[str, np.ndarray]:
    texts, images, rows = workload.sentences()[:4], workload.digit_images()[:4], workload.tabular_rows()
    with Client(url, protocol=protocol, timeout_s=60) as client:
        return {
            "text_sentiment": _probabilities(client.sentiment(texts)),
            "lstm_sentiment": _probabilities(client.sentiment(texts, model="lstm_sentiment")),
            "text_embedding": client.embed(texts),
            "digit_classifier": _probabilities(client.classify_digit(images)),
            "diabetes_regressor": client.predict_diabetes(rows["diabetes"][:4]),
            "cancer_classifier": client.predict_cancer(rows["cancer"][:4]),
        }


def _probabilities(predictions) -> np.ndarray:
    return np.array([[p.probabilities[label] for label in sorted(p.probabilities)] for p in predictions])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_public_endpoint_answers_as_the_embedded_server_does(container, server, protocol):
    def url(settings):
        return settings.http_url if protocol == "http" else settings.grpc_url

    inside, embedded = _served(url(container.settings), protocol), _served(url(server.settings), protocol)
    differences = {endpoint: float(np.max(np.abs(inside[endpoint] - values))) for endpoint, values in embedded.items()}
    print(f"\n{protocol}: largest |container - embedded| per endpoint: {differences}")
    for endpoint, values in embedded.items():
        np.testing.assert_allclose(inside[endpoint], values, rtol=1e-4, atol=1e-5, err_msg=endpoint)


def test_it_runs_as_a_non_root_user_on_a_read_only_root(container):
    assert container.podman("exec", container.name, "id", "-u").stdout.strip() == "1000"
    denied = container.podman("exec", container.name, "touch", "/srv/tritonkit/written", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert container.podman("exec", container.name, "touch", "/tmp/written", check=False).returncode == 0


def test_the_admin_apis_refuse_a_caller_without_the_key(container):
    index = f"{container.settings.http_url}/v2/repository/index"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(index, data=b"{}", method="POST"), timeout=10)
    assert refused.value.code == 403
    request = urllib.request.Request(index, data=b"{}", method="POST", headers={"triton-admin-key": ADMIN_KEY})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    client = grpcclient.InferenceServerClient(container.settings.grpc_url)
    with pytest.raises(Exception, match="triton-grpc-protocol-triton-admin-key") as denied:
        client.get_model_repository_index()
    client.close()
    assert denied.value.status() == "StatusCode.PERMISSION_DENIED"


def test_the_watchdog_heals_a_killed_stub_inside_the_container(container):
    server = tritonserver_of(container.launcher_pid())
    assert server is not None
    (victim,) = [stub for stub in stubs_of(server) if stub.model == "minilm_tokenizer"]
    os.kill(victim.pid, signal.SIGKILL)
    killed, last_error = time.monotonic(), None
    with Client(container.settings.http_url, retries=0, timeout_s=5) as client:
        while time.monotonic() - killed < 30:
            try:
                client.sentiment("the kitchen was fast and friendly")
                if time.monotonic() - killed > 1:
                    break
            except Exception as exc:
                last_error = exc
            time.sleep(0.2)
    healed = time.monotonic() - killed
    print(f"\nstub killed inside the container: serving again {healed:.1f} s later (last error: {last_error})")
    assert healed < 10, container.log()[-3000:]
    with urllib.request.urlopen(container.settings.metrics_url, timeout=10) as answer:
        metrics = answer.read().decode()
    assert 'tritonkit_model_recoveries_total{model="minilm_tokenizer",cause="died"} 1' in metrics


def test_sigterm_drains_in_flight_requests_and_the_container_exits(container):
    # Last in the module: it ends the container. 16 requests in flight, then SIGTERM to `--container`, which passes
    # it to `podman run` and so to the launcher: every request completes, and everything exits within the bound.
    texts = [" ".join(workload.sentences()[i : i + 12]) for i in range(16)]
    results: list[object] = []

    def send(text: str) -> None:
        try:
            with Client(container.settings.http_url, retries=0, timeout_s=60) as client:
                results.append(client.embed(text).shape)
        except Exception as exc:  # a lost request
            results.append(exc)

    threads = [threading.Thread(target=send, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    container.process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    for thread in threads:
        thread.join(60)
    code = container.process.wait(STOP_BOUND_S)
    print(f"\nSIGTERM with 16 in flight: exited {time.monotonic() - stopped:.1f} s later, code {code}")
    assert [r for r in results if isinstance(r, Exception)] == [], results
    assert len(results) == 16 and code == 0, container.log()[-3000:]
    assert container.name not in container.podman("ps", "-a", "--format", "{{.Names}}").stdout
