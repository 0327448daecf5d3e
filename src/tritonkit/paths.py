"""Where the project's files live: the two model repositories, the data, reports and run-time folders.

This is the one module that knows. The project folder is, in order:
  1. ``$TRITONKIT_ROOT``, when set (an installed wheel, a container, a test's copy of the project);
  2. the checkout this package was installed from (``pip install -e .``: ``src/tritonkit`` sits in it);
  3. the current folder or one above it.
A folder counts when it holds both ``model_repository/`` and ``ensembles/``. Files that ship inside the
package (the ORT backend's ``model.py``, ``locust.conf``) are found beside their module instead.

Nothing is resolved at import time: the client and ``--help`` work anywhere.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

ROOT_ENV = "TRITONKIT_ROOT"
MARKERS = ("model_repository", "ensembles")


class ProjectNotFound(RuntimeError):
    """No tritonkit project folder was found; the message says where it looked and the fix."""


def _is_project(folder: Path) -> bool:
    return all((folder / marker).is_dir() for marker in MARKERS)


@functools.cache
def root() -> Path:
    """The project folder (see the module docstring); raises ``ProjectNotFound`` naming the fix."""
    override = os.environ.get(ROOT_ENV)
    if override:
        folder = Path(override).expanduser().resolve()
        if not _is_project(folder):
            raise ProjectNotFound(
                f"{ROOT_ENV}={override} holds no model_repository/ and ensembles/; "
                "point it at a tritonkit checkout (git clone, then `make export`)"
            )
        return folder
    here = Path(__file__).resolve()
    cwd = Path.cwd().resolve()
    for folder in (here.parents[2], cwd, *cwd.parents):
        if _is_project(folder):
            return folder
    raise ProjectNotFound(
        f"no tritonkit project (a folder with model_repository/ and ensembles/) at {here.parents[2]} or in "
        f"{cwd} and above; run from inside a checkout or set {ROOT_ENV}=/path/to/tritonkit"
    )


def model_repository() -> Path:
    """``model_repository/``: the exported models and their generated configs."""
    return root() / "model_repository"


def ensembles() -> Path:
    """``ensembles/``: the public pipelines and their Python steps (the second ``--model-repository``)."""
    return root() / "ensembles"


def repositories() -> tuple[Path, Path]:
    """Both repositories, in the order tritonserver gets them."""
    return model_repository(), ensembles()


def data() -> Path:
    """``data/``: the datasets that ship with the repository."""
    return root() / "data"


def reports() -> Path:
    """``reports/``: load-test results (git-ignored)."""
    return root() / "reports"


def bench_results() -> Path:
    """``bench/results/``: the committed benchmark report."""
    return root() / "bench" / "results"


def artifacts() -> Path:
    """``artifacts/``: trained weights kept beside the repositories (git-ignored), for the benchmark."""
    return root() / "artifacts"


RUNTIME_ENV = "TRITONKIT_RUNTIME"


def runtime() -> Path:
    """``.triton/``: what the embedded server lays out at start (backend directory; git-ignored).

    ``$TRITONKIT_RUNTIME`` moves it, for a read-only project folder (a container image: a tmpfs there). Outside a
    project (an installed wheel serving the user's own repository) it is ``$XDG_CACHE_HOME/tritonkit``
    (``~/.cache/tritonkit``).
    """
    override = os.environ.get(RUNTIME_ENV)
    if override:
        return Path(override)
    try:
        return root() / ".triton"
    except ProjectNotFound:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tritonkit"


def gpu_repository() -> Path:
    """``gpu_repository/``: TensorRT engines built on GPU hosts, and copies of the models without one (git-ignored);
    served with ``ensembles/`` in place of ``model_repository/``."""
    return root() / "gpu_repository"


def run_cli(main) -> int:
    """Runs a tool's ``main()``; a missing project ends it with the fix on stderr and exit code 2, not a traceback."""
    import sys

    try:
        return main()
    except ProjectNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
