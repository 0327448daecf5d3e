"""From the user's own project, not this checkout: the built wheel installed with its export and server extras into a
fresh virtual environment serves a model the user added, with none of the project's folders anywhere in sight.

Slow (about two minutes: the fresh environment installs torch, transformers and the embedded Triton from the
registry, the pip cache warm after `make setup`); it is the only test that proves the wheel alone is enough.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import joblib
import numpy as np
import pytest

from tritonkit import paths
from tritonkit.server.ports import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INSTALL_TIMEOUT_S = 900
READY_TIMEOUT_S = 120


def _run(argv, **options) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **options)
    assert done.returncode == 0, f"{' '.join(map(str, argv))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """A new virtual environment with the wheel built from this checkout and its export and server extras."""
    folder = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir",
          str(folder / "dist"), str(paths.root())], timeout=300)
    (wheel,) = (folder / "dist").glob("tritonkit-*.whl")
    _run([sys.executable, "-m", "venv", str(folder / "venv")], timeout=120)
    python = folder / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile",  # no .pyc for 2 GB of packages: faster
          f"tritonkit[export,server] @ {wheel.as_uri()}"],
         timeout=INSTALL_TIMEOUT_S)
    return python


def _clean_environment() -> dict[str, str]:
    """No hint of this checkout: no TRITONKIT_ROOT, no PYTHONPATH, no venv of ours on PATH."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TRITONKIT_ROOT", "PYTHONPATH", "VIRTUAL_ENV", "TRITONKIT_RUNTIME")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep)
                                  if not part.startswith(str(paths.root())))
    return env


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.poll() is None, "the launcher exited before it was ready"
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready within {READY_TIMEOUT_S} s")


def test_the_wheel_alone_adds_and_serves_a_users_model_outside_the_checkout(fresh_python, own_models, tmp_path):
    project = tmp_path / "users_project"  # the user's own folder: no model_repository/, no ensembles/
    project.mkdir()
    shutil.copy(own_models.sklearn, project / "iris.joblib")
    shutil.copy(own_models.sklearn_sample, project / "iris.npz")
    env = _clean_environment()
    located = _run([str(fresh_python), "-c", "import tritonkit, pathlib; print(pathlib.Path(tritonkit.__file__))"],
                   cwd=project, env=env, timeout=60).stdout.strip()
    assert not located.startswith(str(paths.root())), located  # the installed wheel, not this checkout's source
    _run([str(fresh_python), "-m", "tritonkit.export", "add", "iris", "iris.joblib", "--sample", "iris.npz",
          "--repository", "models"], cwd=project, env=env, timeout=300)
    assert (project / "models" / "iris" / "1" / "model.onnx").is_file()
    http, grpc, metrics = free_ports(3)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - the server writes to it until it is stopped
    server = subprocess.Popen([str(fresh_python), "-m", "tritonkit.server", "--model-repository", "models",
                               "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)],
                              cwd=project, env={**env, "XDG_CACHE_HOME": str(tmp_path / "cache")}, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{http}", server)
        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
        body = {"inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": rows.ravel().tolist()}]}
        request = urllib.request.Request(f"http://127.0.0.1:{http}/v2/models/iris/infer",
                                         data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            outputs = {output["name"]: output["data"] for output in json.load(response)["outputs"]}
        assert outputs["label"] == joblib.load(own_models.sklearn).predict(rows).tolist()
        assert (tmp_path / "cache" / "tritonkit" / "backends" / "onnxruntime" / "model.py").is_file()
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "server.log").read_text()[-4000:]
