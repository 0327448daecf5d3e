"""A Hugging Face classifier's endpoint, generated like the built-in text endpoints (``repository/ensembles``):

    NAME              ensemble: TEXT -> LABEL, PROBABILITIES (the latest version of NAME_model)
    NAME_tokenizer    tokenizer step (tritonkit.steps.steps.TokenizerStep) with the model's tokenizer.json
    NAME_model        the ONNX classifier: its tokenizer's inputs -> logits, and LABEL and PROBABILITIES from the
                      head in its graph (convert/head.py), labels.txt from id2label
"""

from __future__ import annotations

from tritonkit.export.add import write
from tritonkit.export.add.source import TextModel
from tritonkit.export.builtin.registry import CLASSIFIED, TEXT
from tritonkit.export.repository.ensembles import EnsembleSpec, Like, Stage, StepSpec, ensemble_config, step_configs


def specs(name: str, text: TextModel) -> tuple[StepSpec, EnsembleSpec]:
    model = f"{name}_model"
    tokenizer = StepSpec(
        f"{name}_tokenizer", "TokenizerStep",
        f"TEXT -> {model}'s word pieces, truncated at {text.max_tokens}; an empty text is answered",
        inputs=(TEXT,), outputs=tuple(Like(model, tensor) for tensor in text.input_names),
        parameters=(("max_tokens", str(text.max_tokens)), ("pad_id", str(text.pad_id)), ("allow_empty", "true")))
    endpoint = EnsembleSpec(name, f"TEXT -> LABEL ({', '.join(text.labels)}) and PROBABILITIES from {model}",
                            (Stage(tokenizer.name), Stage(model, outputs=CLASSIFIED)))
    return tokenizer, endpoint


def stage(staged: write.Staged, name: str, model_config, text: TextModel, command: str, *, whole: bool) -> None:
    """Stages the steps and the ensemble (``whole``: a new endpoint; otherwise a new version of NAME_model, whose
    tokenizer must be the one the endpoint already has)."""
    tokenizer, endpoint = specs(name, text)
    if not whole:
        current = staged.repository / tokenizer.name / "1" / "tokenizer.json"
        if not current.is_file() or current.read_text() != text.tokenizer_json:
            from tritonkit.export import ExportError

            raise ExportError(f"{name}: this version's tokenizer differs from the one {tokenizer.name} serves; one "
                              "tokenizer serves every version: add it under a new NAME")
        return
    configs = {model_config.name: model_config}
    steps = step_configs((tokenizer,), (endpoint,), configs)
    write.write_step(staged, tokenizer, steps[tokenizer.name], {"tokenizer.json": text.tokenizer_json},
                     command=command)
    write.write_ensemble(staged, endpoint.name, ensemble_config(endpoint, {**configs, **steps}), command)
    staged.folders += [tokenizer.name, endpoint.name]
