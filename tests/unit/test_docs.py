"""The README and `make help` describe what the code does."""

import re
import subprocess

from tritonkit import paths

README = (paths.root() / "README.md").read_text()


def _make_help_targets() -> list[str]:
    done = subprocess.run(["make", "--no-print-directory", "help"], capture_output=True, text=True,
                          cwd=paths.root(), timeout=30)
    return re.findall(r"^\s+(?:\x1b\[\d+m)?([a-z0-9-]+)", done.stdout, flags=re.MULTILINE)


def test_quick_start_has_exactly_the_two_commands():
    quick_start = README.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["make serve", "make test"]


def test_readme_target_table_lists_every_make_target():
    targets = _make_help_targets()
    assert {"setup", "export", "serve", "serve-container", "test"} <= set(targets)
    in_table = re.findall(r"^\| `make ([a-z0-9-]+)` \|", README, flags=re.MULTILINE)
    assert in_table == targets


def test_makefile_help_is_the_default_goal():
    done = subprocess.run(["make", "--no-print-directory"], capture_output=True, text=True, cwd=paths.root(),
                          timeout=30)
    assert "serve" in done.stdout and "test" in done.stdout


def test_readme_layout_names_only_paths_that_exist():
    layout = README.split("## Layout", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    parents = {0: paths.root()}  # indent -> the folder its entries are in
    for line in layout.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent >= 8:
            continue  # a continued description
        name = line.split()[0]
        path = parents[indent] / name
        assert path.exists(), f"README's Layout names {name}, which is not at {path}"
        parents[indent + 2] = path


def test_readme_layout_lists_every_subpackage():
    layout = README.split("## Layout", 1)[1].split("```", 2)[1]
    package = paths.root() / "src" / "tritonkit"
    for child in package.iterdir():
        if child.is_dir() and (child / "__init__.py").is_file():
            assert f"  {child.name}/" in layout, f"README's Layout lacks src/tritonkit/{child.name}/"


def test_make_serve_serves_a_users_repository_beside_the_projects():
    done = subprocess.run(["make", "--no-print-directory", "-n", "serve", "USER_REPOSITORY=/data/my_models"],
                          capture_output=True, text=True, cwd=paths.root(), timeout=30)
    assert ("-m tritonkit.server --model-repository model_repository --model-repository ensembles "
            "--model-repository /data/my_models") in done.stdout, done.stdout
    plain = subprocess.run(["make", "--no-print-directory", "-n", "serve"], capture_output=True, text=True,
                           cwd=paths.root(), timeout=30)
    assert "--model-repository" not in plain.stdout
