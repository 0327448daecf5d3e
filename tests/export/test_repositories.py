"""The project's repositories after export: the linter passes them, and every generated file is what the
generator makes from registry.py and the graphs (a hand edit is caught)."""

import shutil

import pytest

from tritonkit import paths
from tritonkit.export.__main__ import main as export_main
from tritonkit.export.builtin.generate import OPENAPI_FILE, generated_files, sync
from tritonkit.export.repository.lint import lint_repositories


def test_lint_passes_the_project_repositories(exported_repository):
    problems = lint_repositories([exported_repository, exported_repository.parent / "ensembles"])
    assert problems == [], "\n".join(map(str, problems))


def _copy_repositories(exported_repository, tmp_path):
    """Configs and labels copied, version folders linked: a scratch project to hand-edit."""
    copies = []
    for source in (exported_repository, exported_repository.parent / "ensembles"):
        target = tmp_path / source.name
        for model in sorted(path for path in source.iterdir() if path.is_dir()):
            (target / model.name).mkdir(parents=True)
            for child in model.iterdir():
                if child.is_dir():
                    (target / model.name / child.name).symlink_to(child.resolve())
                else:
                    shutil.copy2(child, target / model.name / child.name)
        copies.append(target)
    shutil.copy2(exported_repository.parent / OPENAPI_FILE, tmp_path / OPENAPI_FILE)
    return copies


def test_committed_generated_files_are_what_the_generator_makes(exported_repository):
    files = generated_files(exported_repository, exported_repository.parent / "ensembles")
    _, drifts = sync(files, check=True)
    assert not drifts, "\n".join(map(str, drifts))


@pytest.mark.parametrize("edited", ["model_repository/minilm_sentiment/config.pbtxt",
                                    "model_repository/digit_resnet/labels.txt",
                                    "ensembles/text_sentiment/config.pbtxt"])
def test_a_hand_edit_to_a_generated_file_is_reported_and_nothing_is_written(edited, exported_repository, tmp_path):
    models, steps = _copy_repositories(exported_repository, tmp_path)
    path = tmp_path / edited
    path.write_text(path.read_text().replace("max_batch_size: 32", "max_batch_size: 8") + "\n# tuned by hand\n")
    edited_text = path.read_text()
    written, drifts = sync(generated_files(models, steps), check=True)
    assert [drift.path for drift in drifts] == [path] and not written
    assert "registry.py" in str(drifts[0]) and path.read_text() == edited_text


def test_check_configs_writes_nothing_not_even_the_model_card(exported_repository):
    def snapshot():
        return {path: (path.stat().st_mtime_ns, path.read_bytes()) for repository in paths.repositories()
                for path in sorted(repository.rglob("*")) if path.is_file() and path.suffix != ".onnx"}

    card = exported_repository / "MODELS.md"
    before_card = card.read_text()
    card.write_text(before_card + "\nA line no generator writes.\n")  # what a rewrite would remove
    try:
        before = snapshot()
        assert export_main(["--check-configs"]) == 0
        assert snapshot() == before
    finally:
        card.write_text(before_card)
