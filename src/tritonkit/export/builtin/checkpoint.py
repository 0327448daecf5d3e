"""``python -m tritonkit.export --model NAME --checkpoint FILE``: a built-in architecture with weights trained
elsewhere, exported through that model's own parity check and held-out metric instead of training here.

A PyTorch checkpoint is a ``state_dict`` saved with ``torch.save`` (read with ``weights_only=True``: no code runs);
its tensors must match the architecture's by name and shape, or it is refused naming the first that does not. A
scikit-learn checkpoint (``diabetes_regressor``) is a fitted estimator saved with joblib or pickle, which runs
code when loaded: load only files you trust.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from tritonkit.export import CheckpointError
from tritonkit.export.spec import Built, ModelSpec


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def loader(spec: ModelSpec, path: Path) -> tuple[Callable[[], Built], str]:
    """A builder that exports ``spec`` from the checkpoint at ``path``, and the file's SHA-256."""
    path = Path(path)
    if not spec.checkpoint:
        raise CheckpointError(f"{spec.name} takes no --checkpoint (it is pretrained, not trained here); the models "
                              "that do: see `python -m tritonkit.export --list`")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; pass the path of the checkpoint")
    content = _read_state_dict(spec, path) if spec.checkpoint == "state_dict" else _read_estimator(spec, path)
    return (lambda: spec.build(checkpoint=content)), sha256_of(path)


def _read_state_dict(spec: ModelSpec, path: Path) -> Mapping:
    import pickle
    import zipfile

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"{path} is not a PyTorch state_dict that torch.load reads with weights_only=True "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); save one with "
                              f"torch.save(model.state_dict(), '{path.name}')") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state_dict of tensors; save one with "
                              f"torch.save(model.state_dict(), '{path.name}')")
    return state


def _read_estimator(spec: ModelSpec, path: Path):
    import joblib

    try:
        estimator = joblib.load(path)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a scikit-learn model saved with joblib or pickle "
                              f"({type(exc).__name__}: {str(exc)[:160]})") from None
    if not hasattr(estimator, "predict"):
        raise CheckpointError(f"{path} holds a {type(estimator).__name__}, which has no predict(); save the fitted "
                              "Pipeline with joblib.dump")
    return estimator


def load_state(module, state: Mapping, model: str):
    """Loads ``state`` into ``module`` (eval mode) after checking every tensor's name and shape."""
    expected = module.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            raise CheckpointError(f"{model}: the checkpoint has no tensor {name!r} (shape {list(tensor.shape)}), "
                                  f"which the architecture needs; it has {_sample(state)}")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{model}: checkpoint tensor {name!r} has shape {list(state[name].shape)}, the "
                                  f"architecture needs {list(tensor.shape)}; the checkpoint is for another "
                                  "architecture or vocabulary")
    unexpected = [name for name in state if name not in expected]
    if unexpected:
        raise CheckpointError(f"{model}: the checkpoint has tensors the architecture lacks: {unexpected[:5]}; it is "
                              "for another architecture")
    module.load_state_dict(state)
    return module.eval()


def check_features(estimator, features: int, model: str) -> None:
    found = getattr(estimator, "n_features_in_", None)
    if found is not None and found != features:
        raise CheckpointError(f"{model}: the estimator was fitted on {found} features, the model takes {features}")


def _sample(state: Mapping) -> str:
    names = list(state)
    return ", ".join(repr(name) for name in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
