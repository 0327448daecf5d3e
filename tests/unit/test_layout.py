"""The repository layout every later capability plugs into, present in a clean clone."""

import re
import subprocess

import tomllib

from tritonkit import paths


def test_both_model_repositories_are_tracked_by_git():
    # An empty folder is not in a clone, and tritonserver refuses a --model-repository that does not exist.
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=paths.root(), timeout=30).stdout
    if not tracked:  # not a git checkout (a source archive): the folders only need to exist
        assert all(path.is_dir() for path in paths.repositories())
        return
    for repository in paths.repositories():
        assert any(line.startswith(f"{repository.name}/") for line in tracked.splitlines()), repository


# Files that spawn a process naming a server entry point, and why each may: anything else must use TritonServer.
SPAWNERS = {
    "src/tritonkit/server/supervisor/process.py": "TritonServer itself",
    "tests/integration/test_launcher.py": "`--help`, and a start the launcher refuses before any server runs",
    "tests/unit/test_docker.py": "`--docker --dry-run` only prints commands",
    "tests/integration/test_container.py": "`--container`: the server runs in a container, which podman owns",
    "src/tritonkit/server/supervisor/container.py": "ContainerServer: the engine owns the server (SIGTERM passes)",
    "src/tritonkit/deploy/replicas.py": "`--container --build-only` builds the image; no server runs",
    "tests/integration/test_wheel.py": "the launcher of a fresh venv with the built wheel (not this environment's)",
}
SPAWN = re.compile(r"\bPopen\(|\bspawn\(|subprocess\.(?:run|call|check_call|check_output)\(|os\.(?:exec|spawn)\w*\(")
SERVER = re.compile(r'embedded_command\(|front_command\(|"tritonkit\.server(?:\.front)?"|bin/tritonserver')


def test_only_the_process_owner_spawns_tritonserver():
    found = set()
    for folder in ("src", "tests"):
        for path in (paths.root() / folder).rglob("*.py"):
            if path.samefile(__file__):
                continue  # this test names the patterns it looks for
            text = path.read_text()
            if SPAWN.search(text) and SERVER.search(text):
                found.add(path.relative_to(paths.root()).as_posix())
    assert found == set(SPAWNERS), (
        "start tritonserver through tritonkit.server.supervisor.process.TritonServer (it stops it gracefully, then "
        f"forcibly, and nothing outlives it); unexpected: {sorted(found - set(SPAWNERS))}")


def test_installing_the_project_adds_only_the_tritonkit_package():
    pyproject = tomllib.loads((paths.root() / "pyproject.toml").read_text())
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    assert find == {"where": ["src"], "include": ["tritonkit*"]}
    top_level = {path.name for path in (paths.root() / "src").iterdir() if not path.name.endswith(".egg-info")}
    assert top_level == {"tritonkit"}


# What installing looks like in an argv: pip, apt-get, a new virtual environment.
INSTALLS = re.compile(r'"(?:pip|apt-get)"|"-m", "venv"|"install", "-')


def test_nothing_but_the_setup_tool_installs_packages():
    # Setup installs (make setup, make tools: tritonkit/tools.py); the code that runs needs a tool and names
    # `make tools` when it is missing (tools.require). Tests' fixtures install through tools.install.
    found = sorted(path.relative_to(paths.root()).as_posix() for path in (paths.root() / "src").rglob("*.py")
                   if INSTALLS.search(path.read_text()))
    assert found == ["src/tritonkit/tools.py"]
