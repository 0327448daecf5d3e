"""Every generated file (each ``config.pbtxt`` and ``labels.txt``, each model's ``CARD.md``, an ensemble's
version-folder note, and ``openapi.json``) from ``registry.py``.

``python -m tritonkit.export`` writes them on every run (a hand edit is undone and shows in ``git diff``);
with ``--check-configs`` (CI) it writes nothing and fails on any difference instead. A model's config comes
from its exported graph; where no graph is exported yet, its committed config stands in, so the steps' and
ensembles' configs can still be generated and checked (the unit tier does that without training).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tritonkit.export.builtin import openapi
from tritonkit.export.builtin.registry import ENSEMBLES, MODELS, STEPS
from tritonkit.export.repository import card, ensembles
from tritonkit.export.repository.config import LABEL_FILE, model_config, parse_pbtxt, to_pbtxt

CONFIG_FILE = "config.pbtxt"
VERSION_FOLDER_NOTE = "Ensembles need an (empty) version folder; this file keeps it in git.\n"
OPENAPI_FILE = "openapi.json"  # beside the repositories: the public HTTP API (export/builtin/openapi.py)


@dataclasses.dataclass(frozen=True)
class Drift:
    """A file on disk that differs from what the generator makes."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return (f"{self.path}: {self.reason}; the generator is the source: move a hand edit into "
                "src/tritonkit/export/builtin/registry.py, then run `make export` and commit the regenerated file")


def generated_files(repository: Path, ensembles_repository: Path) -> dict[Path, str]:
    """Path -> text of every generated file, models first, then steps, then ensembles."""
    files: dict[Path, str] = {}
    configs = {}
    for spec in MODELS.values():
        folder = repository / spec.name
        if (folder / "1" / "model.onnx").is_file():
            files.update(model_files(spec, repository))
            configs[spec.name] = parse_pbtxt(files[folder / CONFIG_FILE])
        elif (folder / CONFIG_FILE).is_file():
            configs[spec.name] = parse_pbtxt((folder / CONFIG_FILE).read_text())
        files[folder / card.MODEL_CARD_NAME] = builtin_card(spec)
    steps = ensembles.step_configs(tuple(STEPS.values()), tuple(ENSEMBLES.values()), configs)
    for step in STEPS.values():
        files[ensembles_repository / step.name / CONFIG_FILE] = _text(step.summary, steps[step.name])
        if step.labels:
            files[ensembles_repository / step.name / LABEL_FILE] = ensembles.labels_text(step.labels)
    wired = {**configs, **steps}
    for spec in ENSEMBLES.values():
        wired[spec.name] = ensembles.ensemble_config(spec, wired)
        files[ensembles_repository / spec.name / CONFIG_FILE] = _text(spec.summary, wired[spec.name])
        files[ensembles_repository / spec.name / "1" / "README"] = VERSION_FOLDER_NOTE
    files[ensembles_repository.parent / OPENAPI_FILE] = openapi.text(wired)
    return files


CHECKPOINT_FILES = {"state_dict": "a PyTorch state_dict saved with torch.save",
                    "sklearn": "a fitted scikit-learn pipeline saved with joblib"}


def model_files(spec, repository: Path) -> dict[Path, str]:
    """An exported built-in model's generated files: ``config.pbtxt`` from its graph, ``labels.txt``, ``CARD.md``."""
    folder = repository / spec.name
    config = model_config(spec.name, _load_graph(folder / "1" / "model.onnx"), spec.serving, labels=spec.labels,
                          versions=spec.versions)
    files = {folder / CONFIG_FILE: to_pbtxt(config), folder / card.MODEL_CARD_NAME: builtin_card(spec)}
    if spec.labels:
        files[folder / LABEL_FILE] = ensembles.labels_text(spec.labels)
    return files


def builtin_card(spec) -> str:
    """A built-in model's ``CARD.md``: its spec's facts and sections (its figures are in ``MODELS.md``)."""
    served_by = [name for name, pipeline in ENSEMBLES.items()
                 if spec.name in {stage.model for stage in pipeline.stages}]
    served_by += [step.name for step in STEPS.values() if dict(step.parameters).get("scorer") == spec.name]
    versions = "1 (ONNX FP32)" + (f", 2 ({spec.int8_scheme.describe()})" if len(spec.versions) > 1 else "")
    facts = [("Triton model", f"`{spec.name}`"), ("source", spec.source), ("versions", versions),
             ("public endpoints", ", ".join(f"`{name}`" for name in served_by) or f"`{spec.name}` itself"),
             ("figures", f"[{card.CARD_NAME}](../{card.CARD_NAME}) (parity, held-out metric, size, export time)"),
             ("retrain or bring weights", f"`python -m tritonkit.export --model {spec.name}`"
              + (f" (`--checkpoint FILE`: {CHECKPOINT_FILES[spec.checkpoint]})" if spec.checkpoint else ""))]
    sections = {"Intended use": spec.intended_use, "Limitations": spec.limitations, "License": spec.license}
    return card.model_card(spec.name, spec.description + ".", facts, sections,
                           "Add it to the model's spec in src/tritonkit/export/builtin/registry.py.")


def sync(files: dict[Path, str], *, check: bool) -> tuple[list[Path], list[Drift]]:
    """Writes every file that differs (``check=False``) or reports it (``check=True``).

    Returns:
        The files written, and the drifts found (only with ``check``).
    """
    written, drifts = [], []
    for path, text in files.items():
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        if check:
            drifts.append(Drift(path, "missing" if current is None else "differs from what export generates"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written, drifts


def _text(summary: str, config) -> str:
    from google.protobuf import text_format

    return ensembles.header(summary) + text_format.MessageToString(config)


def _load_graph(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False)  # the inputs and outputs are all the config needs
