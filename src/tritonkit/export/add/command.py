"""``python -m tritonkit.export add NAME SOURCE``: a user's trained model into a verified, batched, served one.

Steps: find SOURCE's kind from its content (``detect``), read and convert it (one loader a kind), make the graph
Triton-ready (named tensors, a batch axis, no vector-only tensors), check it against the source framework on the
sample's rows and rows made around them (``pipeline.check_versions``, the built-in models' checks), optionally
quantize it and measure INT8 against FP32, generate its config (and, for a text classifier, its tokenizer step,
post-processing step and ensemble) through Triton's protobuf, write it all to a staging folder, lint it there, and
only then move it into the repository and update the repository's ``MODELS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import numpy as np

from tritonkit import paths
from tritonkit.export import ExportError, SourceError
from tritonkit.export.add import detect, int8, write
from tritonkit.export.add.sample import read_sample
from tritonkit.export.add.source import Loaded
from tritonkit.export.builtin.checkpoint import sha256_of
from tritonkit.export.convert import head
from tritonkit.export.convert.graph import (
    check_graph,
    columns_for_vectors,
    has_batch_axis,
    name_batch_axis,
    rename_tensors,
)
from tritonkit.export.pipeline import Checked, check_versions
from tritonkit.export.progress import duration, step
from tritonkit.export.repository import card
from tritonkit.export.repository.config import ServingOptions, model_config
from tritonkit.export.repository.record import ExportRecord
from tritonkit.export.spec import Built, ModelSpec
from tritonkit.export.verify import check_parity, run_onnx

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")  # a Triton model name that is also a safe folder name
DEFAULT_MAX_BATCH = 32
LARGE_GRAPH_BYTES = 20 << 20  # above this a model serves like the built-in transformers: 2 instances x 2 threads
TEXT_STEPS = ("_tokenizer", "_model")  # a text endpoint NAME is NAME + these folders (its labels: in NAME_model)


@dataclasses.dataclass(frozen=True)
class Request:
    """What the user asked for (the command line)."""

    name: str
    source: Path
    repository: Path
    sample: Path | None = None
    version: int | None = None
    max_batch_size: int = DEFAULT_MAX_BATCH
    atol: float | None = None
    int8: bool = False
    force: bool = False
    card: Path | None = None
    output_names: tuple[str, ...] = ()
    input_name: str | None = None
    command: str = ""

    def __post_init__(self):
        if not NAME.match(self.name):
            raise SourceError(f"model name {self.name!r} is not valid: start with a letter, then letters, digits, "
                              "'_' or '-', at most 63 characters (it becomes a folder and a URL path)")
        if self.version is not None and self.version < 1:
            raise SourceError(f"--version {self.version}: versions are whole numbers from 1")
        if self.max_batch_size < 0:
            raise SourceError(f"--max-batch-size {self.max_batch_size}: use 0 (no batching) or more")
        if self.atol is not None and not self.atol > 0:
            raise SourceError(f"--atol {self.atol}: the tolerance must be above 0")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.export add",
        description="Turn a model you trained into a Triton model: convert it to ONNX, check it against the "
        "source framework on your sample and rows made around it, generate its config.pbtxt (dynamic batching, "
        "a bounded queue, warm-up), and write it into a model repository. SOURCE's kind is read from its content: "
        "an ONNX file; a TorchScript file (torch.jit.save); a torch.export program (torch.export.save, .pt2); a "
        "scikit-learn estimator or Pipeline saved with joblib or pickle (LOADING A PICKLE RUNS ITS CODE: add only "
        "files you trust); a Hugging Face folder with a BERT-family sequence classifier and its tokenizer (served "
        "as a text endpoint NAME: TEXT -> LABEL, PROBABILITIES). Nothing is written unless every check passes.",
        epilog="Serve it: python -m tritonkit.server --model-repository DIR (alone), or beside the project's "
        "models: make serve USER_REPOSITORY=DIR. Into a running server started with --model-control explicit: "
        "tritonkit load NAME --admin-key KEY.",
    )
    parser.add_argument("name", metavar="NAME", help="the Triton model name (letters, digits, '_', '-')")
    parser.add_argument("source", metavar="SOURCE", type=Path, help="the model file or Hugging Face folder")
    parser.add_argument("--repository", type=Path, metavar="DIR",
                        help="the model repository to write into [default: model_repository/ of the project; "
                        "required outside a tritonkit checkout]")
    parser.add_argument("--sample", type=Path, metavar="FILE.npz",
                        help="example inputs: one array per input, named by input (numpy.savez(path, x=...)) or in "
                        "order; the first axis is the batch. Needed for PyTorch and scikit-learn (shapes, dtypes); "
                        "optional for ONNX with float inputs and for Hugging Face (an array TEXT of strings)")
    parser.add_argument("--version", type=int, metavar="N",
                        help="write version N beside the model's existing versions [default: 1, for a new model]")
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                        help="largest batch Triton's dynamic batcher forms; 0 serves without batching (a graph with "
                        "a fixed batch axis is always served so)")
    parser.add_argument("--atol", type=float, metavar="X",
                        help="max absolute error allowed between ONNX Runtime and the source framework [default: "
                        "1e-4; 1e-3 for Hugging Face logits]")
    parser.add_argument("--int8", action="store_true",
                        help="also write a dynamic-quantized INT8 version (the next version number), refused when "
                        f"its answers stray from FP32's (top class agrees on < {int8.MIN_LABEL_AGREEMENT * 100:g}%% "
                        f"of rows, cosine < {int8.MIN_COSINE}, or error > {int8.MAX_RELATIVE_ERROR * 100:g}%% of the "
                        "range)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing model of that NAME (or, with --version, that version)")
    parser.add_argument("--card", type=Path, metavar="FILE.md",
                        help="Markdown with '## Intended use', '## Limitations' and '## License' sections for the "
                        "model's CARD.md [default: the card says they are missing]")
    parser.add_argument("--output-names", metavar="A,B",
                        help="names for the outputs, in order, instead of the source's (output_0, label, ...)")
    parser.add_argument("--input-name", metavar="X",
                        help="scikit-learn: the input's name [default: features]")
    parser.add_argument("--traceback", action="store_true", help="on an unexpected failure, print the traceback")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        request = Request(
            args.name, args.source, args.repository or _default_repository(), sample=args.sample,
            version=args.version, max_batch_size=args.max_batch_size, atol=args.atol, int8=args.int8,
            force=args.force, card=args.card, input_name=args.input_name,
            output_names=tuple(name.strip() for name in (args.output_names or "").split(",") if name.strip()),
            command=" ".join(["add", *argv]))
        add(request)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.traceback:
            raise
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(f"error: {args.name}: unexpected {type(exc).__name__}: {first}; nothing was written (--traceback shows "
              "where)", file=sys.stderr)
        return 1
    return 0


def _default_repository() -> Path:
    try:
        return paths.model_repository()
    except paths.ProjectNotFound:
        raise SourceError("outside a tritonkit checkout, say where to write: --repository DIR") from None


def add(request: Request) -> list[ExportRecord]:
    """Adds the model (see the module docstring); returns the records of the versions written."""
    start = time.perf_counter()
    kind = detect.detect(request.source)
    print(f"{request.name}: {request.source} is {_article(kind)} {kind} model", flush=True)
    served = f"{request.name}_model" if kind == detect.HUGGING_FACE else request.name
    version = _check_target(request, kind, served)
    card_sections = _read_card(request.card)
    sample = read_sample(request.sample) if request.sample is not None else None
    source_sha256 = sha256_of(request.source) if request.source.is_file() else _folder_sha256(request.source)
    loaded = _load(kind, request, sample)
    loaded, options = _triton_ready(loaded, request)
    spec = ModelSpec(served, kind, f"added from {request.source.name}", lambda: None,
                     atol=request.atol or loaded.atol, metric_name=f"rows checked against {loaded.reference_name}",
                     serving=options, labels=loaded.text.labels if loaded.text is not None else ())
    built = Built(loaded.onnx_model, loaded.holdout, loaded.reference(loaded.holdout),
                  metric=lambda outputs: float(len(next(iter(outputs.values())))))
    checked = _renumber(check_versions(spec, built, source_sha256[:16], start=start, source_sha256=source_sha256),
                        version)
    for note in loaded.notes:
        print(f"  note: {note}", flush=True)
    if request.int8:
        checked = _with_int8(spec, checked, version, source_sha256, start)
    records = _write(request, kind, spec, checked, loaded, sections=card_sections, source_sha256=source_sha256)
    _report(request, kind, records, loaded, time.perf_counter() - start)
    return records


def _article(kind: str) -> str:
    return "an" if kind[0] in "AEIOU" else "a"


def _check_target(request: Request, kind: str, served: str) -> int:
    """The version to write; refuses a name that is taken (and not to be replaced) or clashes with a built-in."""
    from tritonkit.export.builtin.registry import ENSEMBLES, MODELS, STEPS

    names = [request.name, *(request.name + suffix for suffix in TEXT_STEPS)] if kind == detect.HUGGING_FACE \
        else [request.name]
    builtin = set(MODELS) | set(STEPS) | set(ENSEMBLES)
    clash = [name for name in names if name in builtin]
    if clash and Path(request.repository).resolve() != _project_repository():
        raise SourceError(f"{', '.join(clash)} is a built-in model's name; tritonserver refuses two models of one "
                          "name when both repositories are served: choose another NAME")
    existing = write.existing_versions(request.repository / served)
    taken = [name for name in names if (request.repository / name).exists()]
    if request.version is None:
        if taken and not request.force:
            raise SourceError(f"{request.repository / taken[0]} exists (versions {existing or 'none'}); pass --version "
                              f"{max(existing, default=0) + 1} to add a version beside them, or --force to replace "
                              "the model")
        return 1
    if request.version in existing and not request.force:
        raise SourceError(f"{served} already has version {request.version}; pass --force to replace it or choose "
                          f"--version {max(existing) + 1}")
    if request.int8 and request.version + 1 in existing and not request.force:
        raise SourceError(f"--int8 writes version {request.version + 1}, which {served} already has; choose another "
                          "--version or pass --force")
    return request.version


def _project_repository() -> Path | None:
    try:
        return paths.model_repository().resolve()
    except paths.ProjectNotFound:
        return None


def _read_card(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    if not path.is_file():
        raise SourceError(f"--card {path}: no such file; write a Markdown file with '## Intended use', "
                          "'## Limitations' and '## License' sections")
    sections = card.card_sections(path.read_text())
    if not sections:
        raise SourceError(f"--card {path} has no '## ' sections; give '## Intended use', '## Limitations' and "
                          "'## License'")
    return sections


def _folder_sha256(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + bytes.fromhex(sha256_of(path)))
    return digest.hexdigest()


def _load(kind: str, request: Request, sample) -> Loaded:
    with step(f"reading and converting the {kind} model"):
        if kind == detect.ONNX:
            from tritonkit.export.add import onnx_file

            return onnx_file.load(request.source, sample)
        if kind in (detect.TORCHSCRIPT, detect.TORCH_EXPORT):
            from tritonkit.export.add import torch_file

            return torch_file.load(request.source, kind, sample, list(request.output_names) or None)
        if kind == detect.SKLEARN:
            from tritonkit.export.add import sklearn_file

            return sklearn_file.load(request.source, sample, request.input_name)
        from tritonkit.export.add import hf_folder

        return hf_folder.load(request.source, sample)


def _triton_ready(loaded: Loaded, request: Request) -> tuple[Loaded, ServingOptions]:
    """Names, batch axis and vector tensors fixed for Triton; the reference and the rows follow every change."""
    model, reference, holdout = loaded.onnx_model, loaded.reference, dict(loaded.holdout)
    renames = _output_renames(model, request, loaded.kind)
    rename_tensors(model, renames)
    batched = has_batch_axis(model)
    if not batched and request.max_batch_size and request.max_batch_size != DEFAULT_MAX_BATCH:
        raise SourceError(f"--max-batch-size {request.max_batch_size}: the graph's batch axis is fixed, so Triton "
                          "serves it without batching; export it with a dynamic first axis, or leave the option out")
    batched = batched and request.max_batch_size > 0
    vectors_in, vectors_out = columns_for_vectors(name_batch_axis(model)) if batched else ([], [])

    def adapted(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        answers = reference({name: array[:, 0] if name in vectors_in else array for name, array in feeds.items()})
        answers = {renames.get(name, name): np.asarray(value) for name, value in answers.items()}
        return {name: value.reshape(-1, 1) if name in vectors_out else value for name, value in answers.items()}

    holdout = {name: array.reshape(-1, 1) if name in vectors_in else array for name, array in holdout.items()}
    holdout = _whole_batches(model, holdout)
    large = model.ByteSize() > LARGE_GRAPH_BYTES
    options = ServingOptions(
        max_batch_size=request.max_batch_size if batched else 0,
        max_queue_size=request.max_batch_size if batched else 0,  # one full batch waits; more is refused (503)
        instance_count=2 if large else 1, intra_op_threads=2 if large else 1)
    notes = loaded.notes + tuple(f"{name} is sent as [batch, 1] (Triton batches tensors of at least one dim)"
                                 for name in [*vectors_in, *vectors_out])
    if not batched:
        notes += ("served without batching (max_batch_size 0): each request runs alone",)
    return dataclasses.replace(loaded, onnx_model=model, reference=adapted, holdout=holdout, notes=notes), options


def _output_renames(model, request: Request, kind: str) -> dict[str, str]:
    if not request.output_names or kind in (detect.TORCHSCRIPT, detect.TORCH_EXPORT, detect.HUGGING_FACE):
        return {}  # the torch loader names its outputs itself; a text endpoint's are fixed (LABEL, PROBABILITIES)
    current = [value.name for value in model.graph.output]
    if len(request.output_names) != len(current):
        raise SourceError(f"--output-names names {len(request.output_names)} outputs but the model has "
                          f"{len(current)} ({', '.join(current)})")
    return dict(zip(current, request.output_names, strict=True))


def _whole_batches(model, holdout: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A graph with a fixed batch of B rows checks a multiple of B rows."""
    from tritonkit.export.convert.graph import dims_of, graph_inputs

    sizes = {dims_of(value)[0] for value in graph_inputs(model) if dims_of(value) and dims_of(value)[0] > 0}
    if not sizes:
        return holdout
    batch = sizes.pop()
    rows = len(next(iter(holdout.values())))
    if rows < batch:
        raise SourceError(f"the graph takes batches of exactly {batch} rows; give a sample of at least {batch} rows")
    keep = rows - rows % batch
    return {name: array[:keep] for name, array in holdout.items()}


def _renumber(checked: Checked, version: int) -> Checked:
    if version == 1:
        return checked
    records = [dataclasses.replace(record, version=version) for record in checked.records]
    return dataclasses.replace(checked, records=records, payloads={version: checked.payloads[1]},
                               outputs={version: checked.outputs[1]})


def _with_int8(spec: ModelSpec, checked: Checked, version: int, source_sha256: str, start: float) -> Checked:
    fp32 = checked.records[0]
    with step(f"{spec.name}: INT8 dynamic quantization"):
        graph = int8.quantized(checked.built.onnx_model, spec.name)
    if spec.labels:  # the head after the quantized graph, as for FP32 (pipeline.check_versions)
        graph = head.with_head(graph, spec.labels)
    label = f"{spec.name} v{version + 1} (INT8)"
    check_graph(graph, label)
    outputs = run_onnx(graph, checked.built.holdout)
    figures, missed = int8.measure(checked.outputs[version], outputs)
    shown = ", ".join(f"{name} {value:g}" for name, value in figures.items())
    if missed:
        raise ExportError(f"{label} is refused, nothing was written: {'; '.join(missed)} (all: {shown}); serve FP32 "
                          "alone (leave out --int8)")
    errors = check_parity(label, outputs, checked.built.expected, float("inf"), spec.source)
    if spec.labels:
        errors[head.PROBABILITIES] = head.check_head(label, outputs, spec.labels)
    payload = graph.SerializeToString()
    record = dataclasses.replace(
        fp32, version=version + 1, format="ONNX INT8 (dynamic, per-channel, 7-bit weights)", size_bytes=len(payload),
        parity_max_abs_error=errors, tolerance=0.0,  # no bar against the source: INT8 is judged by its agreement
        export_s=round(time.perf_counter() - start, 2), agreement=figures, source_sha256=source_sha256)
    print(f"  {label}: agreement with FP32 on {int(fp32.metric)} rows: {shown}", flush=True)
    return dataclasses.replace(checked, records=[*checked.records, record],
                               payloads={**checked.payloads, version + 1: payload},
                               outputs={**checked.outputs, version + 1: outputs})


def _write(request: Request, kind: str, spec: ModelSpec, checked: Checked, loaded: Loaded, *,
           sections: dict[str, str], source_sha256: str) -> list[ExportRecord]:
    from tritonkit.export.repository.lint import lint_repositories

    repository = Path(request.repository)
    model_dir = repository / spec.name
    new_versions = [record.version for record in checked.records]
    adding_versions = request.version is not None and model_dir.is_dir()
    versions = sorted(set(new_versions) | (set(write.existing_versions(model_dir)) if adding_versions else set()))
    warmup = {name: tuple(array.shape[1:]) if spec.serving.max_batch_size else tuple(array.shape)
              for name, array in checked.built.holdout.items()}
    if spec.serving.max_batch_size == 0:
        warmup = {}  # a fixed shape: the config's own dims
    served_graph = head.with_head(checked.built.onnx_model, spec.labels) if spec.labels else checked.built.onnx_model
    config = model_config(spec.name, served_graph, spec.serving, labels=spec.labels, versions=tuple(versions),
                          warmup_dims=warmup if kind != detect.HUGGING_FACE else None)
    if adding_versions:
        write.check_same_signature(model_dir, config, spec.name)
    with write.staging(repository) as staged, step(f"writing {spec.name} into {repository}"):
        write.write_model(staged, spec.name, checked.payloads, checked.records, config, labels=spec.labels,
                          command=request.command)
        if adding_versions:
            staged.versions[spec.name] = new_versions
        else:
            staged.folders.append(spec.name)
        public = request.name
        if loaded.text is not None:
            from tritonkit.export.add import text_endpoint

            text_endpoint.stage(staged, request.name, config, loaded.text, request.command,
                                whole=not adding_versions)
        card_text = _card(request, kind, checked.records, loaded, sections=sections, source_sha256=source_sha256,
                          versions=versions)
        staged.write(f"{public}/{card.MODEL_CARD_NAME}", card_text)
        problems = lint_repositories([staged.root])
        if problems:
            raise ExportError(f"{spec.name}: the generated repository fails the linter (a bug: please report it): "
                              + "; ".join(map(str, problems[:3])))
        write.move_into_place(staged, replace=request.force)
    _update_models_card(repository)
    return checked.records


def _card(request: Request, kind: str, records: list[ExportRecord], loaded: Loaded, *, sections: dict[str, str],
          source_sha256: str, versions: list[int]) -> str:
    graph = loaded.onnx_model
    tensors = ", ".join(f"`{value.name}`" for value in graph.graph.input) + " -> " + \
        ", ".join(f"`{value.name}`" for value in graph.graph.output)
    if loaded.text is not None:
        tensors = "`TEXT` (BYTES, one UTF-8 text a row) -> `LABEL` (one of " + \
            ", ".join(f"`{label}`" for label in loaded.text.labels) + "), `PROBABILITIES` (softmax)"
    served = ", ".join(map(str, versions))
    if loaded.text is not None:
        served += f" (the endpoint `{request.name}` runs the latest, {max(versions)}, of `{request.name}_model`)"
    facts = [("source", f"{kind}: `{request.source.name}`"), ("source SHA-256", f"`{source_sha256}`"),
             ("tensors", tensors), ("versions served", served)]
    for record in records:
        worst = max(record.parity_max_abs_error.values(), default=0.0)
        agreement = ", ".join(f"{name} {value:g}" for name, value in record.agreement.items())
        facts.append((f"version {record.version}",
                      f"{record.format}, {record.size_bytes / 1024:.1f} KiB; parity max error {worst:.2g} on "
                      f"{int(record.metric)} rows against {loaded.reference_name}"
                      + (f"; INT8 agreement with FP32: {agreement}" if agreement else "")
                      + f"; exported in {record.export_s:.1f} s"))
    facts += [("note", note) for note in loaded.notes]
    facts.append(("made by", f"`python -m tritonkit.export {request.command}`"))
    return card.model_card(request.name, f"Added with `python -m tritonkit.export add` from a {kind} model.", facts,
                           sections, "Not given: pass `--card FILE.md` with this section to `export add` "
                           "(with `--force` or a new `--version`).")


def _update_models_card(repository: Path) -> None:
    from tritonkit.export.builtin.registry import MODELS

    specs = list(MODELS.values()) if Path(repository).resolve() == _project_repository() else []
    path = Path(repository) / card.CARD_NAME
    tmp = path.with_name(f".{card.CARD_NAME}.tmp")
    tmp.write_text(card.render(repository, specs))
    tmp.replace(path)


def _report(request: Request, kind: str, records: list[ExportRecord], loaded: Loaded, took_s: float) -> None:
    for record in records:
        worst = max(record.parity_max_abs_error.values(), default=0.0)
        bar = "judged by agreement with FP32" if record.agreement else f"tolerance {record.tolerance:g}"
        print(f"{record.model} v{record.version}: {record.format}, {record.size_bytes / 1024:.1f} KiB, parity max "
              f"|err| {worst:.2g} ({bar}) on {int(record.metric)} rows against {loaded.reference_name}", flush=True)
    print(f"added {request.name} to {request.repository} in {duration(took_s)}\n"
          f"  serve it alone:        python -m tritonkit.server --model-repository {request.repository}\n"
          f"  beside the project's:  make serve USER_REPOSITORY={request.repository}\n"
          f"  into a running server (--model-control explicit): tritonkit load {request.name} --admin-key KEY",
          flush=True)
