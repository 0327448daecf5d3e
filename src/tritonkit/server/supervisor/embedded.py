"""The embedded tritonserver's command line and files: the real 2.51.0 binary from ``nvidia-pytriton``, no Docker.

``process.TritonServer`` starts and stops it; this module says what to run and prepares what it needs.

It needs three things the wheel does not arrange by itself:
  - a backend directory with the Python backend (``python/``: library, utils and the stub for the
    running interpreter) and our Python-based ``onnxruntime`` backend (``onnxruntime/model.py``);
  - ``LD_LIBRARY_PATH`` with the interpreter's libpython and the wheel's bundled libraries;
  - ``PATH`` with this interpreter first: the stub's embedded Python ignores ``PYTHONPATH`` and takes
    its site-packages from the ``python3`` it finds there (and the pyvenv.cfg beside it).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from tritonkit import paths
from tritonkit.server.command import PrivatePorts, tritonserver_args
from tritonkit.server.errors import EmbeddedServerError
from tritonkit.server.settings import ServerSettings

BACKENDS_SOURCE = Path(__file__).resolve().parent / "backends"  # package data: ships with the module
NATIVE_ENV = "TRITONSERVER"  # a native tritonserver's path (the NGC image sets it); unset: the embedded binary


def pytriton_root() -> Path:
    """The ``pytriton/tritonserver`` folder of the installed ``nvidia-pytriton`` wheel."""
    try:
        import pytriton
    except ImportError as exc:
        raise EmbeddedServerError(
            "nvidia-pytriton is not installed in this environment; run `make setup` "
            "(it carries the tritonserver binary)"
        ) from exc
    root = Path(pytriton.__file__).resolve().parent / "tritonserver"
    if not (root / "bin" / "tritonserver").is_file():
        raise EmbeddedServerError(f"{root}/bin/tritonserver is missing; reinstall with `make setup`")
    return root


def native_binary() -> Path | None:
    """The native tritonserver named by ``$TRITONSERVER`` (the NGC image's), or None for the embedded one.

    A native server brings its own backends (``/opt/tritonserver/backends``: the C++ ONNX Runtime backend and
    the Python backend) and libraries: nothing is laid out and the environment is left alone.
    """
    raw = os.environ.get(NATIVE_ENV)
    if not raw:
        return None
    path = Path(raw)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise EmbeddedServerError(f"{NATIVE_ENV}={raw} is not an executable tritonserver; unset it to run the "
                                  "embedded binary of nvidia-pytriton")
    return path


def default_backend_directory() -> Path:
    return paths.runtime() / "backends"


def prepare_backends(directory: Path | None = None) -> Path:
    """Lays out the backend directory (copied afresh on every start) and returns it.

    Copies, not symlinks: Triton refuses a backend library whose real path escapes the backend
    directory. The stub loses its relative RPATH in the copy; ``server_environment`` makes up for it.
    """
    directory = directory or default_backend_directory()
    root = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise EmbeddedServerError(f"the Python backend has no stub for Python {version}; use Python 3.8-3.13")
    files = {
        "python/libtriton_python.so": root / "backends" / "python" / "libtriton_python.so",
        "python/triton_python_backend_utils.py": root / "backends" / "python" / "triton_python_backend_utils.py",
        "python/triton_python_backend_stub": stub,
    }
    for model_py in BACKENDS_SOURCE.glob("*/model.py"):
        files[f"{model_py.parent.name}/model.py"] = model_py
    for relative, source in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.copy2(source, tmp)
        tmp.replace(target)  # atomic: two launchers may prepare the same folder at once
    return directory


def server_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment tritonserver and its Python stubs need."""
    env = dict(os.environ if base is None else base)
    libraries = [sysconfig.get_config_var("LIBDIR") or "", str(pytriton_libs())]
    env["LD_LIBRARY_PATH"] = _join_paths(libraries, env.get("LD_LIBRARY_PATH"))
    # The stub's embedded interpreter ignores PYTHONPATH but finds `python3` on PATH and, from the
    # pyvenv.cfg beside it, takes this environment's site-packages: put our interpreter first.
    env["PATH"] = _join_paths([str(Path(sys.executable).parent)], env.get("PATH"))
    return env


def embedded_command(settings: ServerSettings, backend_directory: Path,
                     private: PrivatePorts | None = None) -> list[str]:
    """The full argv of the embedded server, or of the native one under ``$TRITONSERVER`` with its own backends
    (``private``: see ``tritonserver_args``)."""
    native = native_binary()
    repositories = [str(Path(path).resolve()) for path in settings.repositories]
    if native is not None:
        return [str(native), *tritonserver_args(settings, repositories, private=private)]
    binary = pytriton_root() / "bin" / "tritonserver"
    args = tritonserver_args(settings, repositories, backend_directory=str(backend_directory), private=private)
    return [str(binary), *args]


def pytriton_libs() -> Path:
    """The libraries the ``nvidia-pytriton`` wheel bundles (renamed, as auditwheel does)."""
    return pytriton_root().parent.parent / "nvidia_pytriton.libs"


def _join_paths(entries: list[str], existing: str | None) -> str:
    parts = [entry for entry in entries if entry]
    if existing:
        parts.append(existing)
    return os.pathsep.join(parts)
