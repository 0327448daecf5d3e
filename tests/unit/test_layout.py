"""The repository layout every later capability plugs into, present in a clean clone."""

import subprocess

from tritonkit import paths


def test_both_model_repositories_are_tracked_by_git():
    # An empty folder is not in a clone, and tritonserver refuses a --model-repository that does not exist.
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=paths.root(), timeout=30).stdout
    if not tracked:  # not a git checkout (a source archive): the folders only need to exist
        assert all(path.is_dir() for path in paths.repositories())
        return
    for repository in paths.repositories():
        assert any(line.startswith(f"{repository.name}/") for line in tracked.splitlines()), repository
