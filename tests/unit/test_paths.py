"""tritonkit.paths: the one place that knows where the project's files are."""

import subprocess
import sys

import pytest

from tritonkit import paths


@pytest.fixture
def fresh_root(monkeypatch):
    paths.root.cache_clear()
    yield monkeypatch
    paths.root.cache_clear()


def test_root_is_this_checkout_by_default(fresh_root):
    fresh_root.delenv(paths.ROOT_ENV, raising=False)
    assert (paths.root() / "pyproject.toml").is_file()
    assert paths.repositories() == (paths.root() / "model_repository", paths.root() / "ensembles")


def test_environment_override_wins(fresh_root, tmp_path):
    (tmp_path / "model_repository").mkdir()
    (tmp_path / "ensembles").mkdir()
    fresh_root.setenv(paths.ROOT_ENV, str(tmp_path))
    assert paths.model_repository() == tmp_path.resolve() / "model_repository"
    assert paths.bench_results() == tmp_path.resolve() / "bench" / "results"


def test_override_that_is_not_a_project_names_the_fix(fresh_root, tmp_path):
    fresh_root.setenv(paths.ROOT_ENV, str(tmp_path))
    with pytest.raises(paths.ProjectNotFound, match="holds no model_repository/ and ensembles/; point it at"):
        paths.root()


def test_tools_start_outside_the_project_and_say_where_to_point_them(tmp_path):
    # An installed wheel run from elsewhere: help works, and needing the project gives the fix, not a traceback.
    env = {"PATH": "/usr/bin:/bin", paths.ROOT_ENV: str(tmp_path)}
    helped = subprocess.run([sys.executable, "-m", "tritonkit.export", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert helped.returncode == 0 and "--check-configs" in helped.stdout
    listed = subprocess.run([sys.executable, "-m", "tritonkit.export.repository.lint"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert listed.returncode == 2 and listed.stderr.startswith(f"error: {paths.ROOT_ENV}=")
    assert "Traceback" not in listed.stderr


def test_the_runtime_folder_moves_for_a_read_only_project(monkeypatch, tmp_path):
    monkeypatch.setenv("TRITONKIT_RUNTIME", str(tmp_path / "runtime"))
    assert paths.runtime() == tmp_path / "runtime"
    from tritonkit.server.supervisor.embedded import default_backend_directory

    assert default_backend_directory() == tmp_path / "runtime" / "backends"
