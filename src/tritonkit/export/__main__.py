"""``python -m tritonkit.export``: train, convert, verify and write every model into the Triton repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tritonkit import paths
from tritonkit.export import ExportError
from tritonkit.export.builtin import tensorrt
from tritonkit.export.builtin.generate import generated_files, sync
from tritonkit.export.builtin.registry import MODELS
from tritonkit.export.convert import onnx2trt
from tritonkit.export.fingerprint import fingerprint
from tritonkit.export.pipeline import export_model, up_to_date
from tritonkit.export.repository.card import CARD_NAME, render
from tritonkit.export.repository.config import write_if_changed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.export",
        description="Train each built-in model (seeded), export it to ONNX, check the graph, compare ONNX Runtime "
        "with the source framework on held-out rows, and write model.onnx + config.pbtxt into the repository. "
        "A model whose code, data, spec and frameworks did not change since its last export is skipped.",
        epilog="Your own model: `python -m tritonkit.export add NAME SOURCE` (see `python -m tritonkit.export add "
        "--help`) turns an ONNX, TorchScript, torch.export, scikit-learn or Hugging Face model into a served one.",
    )
    parser.add_argument(
        "--model",
        action="append",
        choices=sorted(MODELS),
        metavar="NAME",
        help=f"export only this model; repeat for several (choices: {', '.join(sorted(MODELS))})",
    )
    parser.add_argument("--force", action="store_true", help="export even when the model is up to date")
    parser.add_argument(
        "--checkpoint", type=Path, metavar="FILE",
        help="with one --model: export weights trained elsewhere for that model's architecture instead of training "
        "here (a PyTorch state_dict saved with torch.save, or for diabetes_regressor a scikit-learn pipeline saved "
        "with joblib: loading a pickle runs its code, so load only files you trust); it goes through the model's "
        "own parity check and held-out metric",
    )
    parser.add_argument(
        "--repository", type=Path, help="model repository to write (default: model_repository/ of the project)"
    )
    parser.add_argument(
        "--ensembles", type=Path,
        help="ensembles repository whose steps get tokenizer files (default: ensembles/ of the project)",
    )
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument(
        "--check-configs", action="store_true",
        help="write nothing (no config.pbtxt, labels.txt, CARD.md or MODELS.md) but the exported models; fail when a "
        "committed generated file differs from what the generator makes from registry.py and the graphs (CI runs "
        "this: a hand edit to a generated file fails it)",
    )
    parser.add_argument(
        "--tensorrt",
        action="store_true",
        help="GPU hosts: build TensorRT FP16 engines from the exported ONNX into --gpu-repository "
        "(needs an NVIDIA GPU and pip install '.[tensorrt]')",
    )
    parser.add_argument(
        "--gpu-repository", type=Path,
        help="where --tensorrt writes engines and their configs, kept out of the CPU repository "
        "(default: gpu_repository/ of the project)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is not None and len(args.model or []) != 1:
        parser.error("--checkpoint needs exactly one --model NAME: the architecture the weights are for")
    args.repository = args.repository or paths.model_repository()
    args.ensembles = args.ensembles or paths.ensembles()
    args.gpu_repository = args.gpu_repository or paths.gpu_repository()
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["add"]:
        from tritonkit.export.add.command import main as add_main

        return add_main(argv[1:])
    args = parse_args(argv)
    if args.list:
        for spec in MODELS.values():
            print(f"{spec.name:22} {spec.source:14} held-out {spec.metric_name}, parity atol {spec.atol:g}")
        return 0
    names = args.model or list(MODELS)
    if args.tensorrt:
        return export_engines([MODELS[name] for name in names], args.repository, args.gpu_repository)
    if args.checkpoint is not None:
        return export_checkpoint(MODELS[names[0]], args)
    failed = []
    for position, name in enumerate(names, start=1):
        spec = MODELS[name]
        current = fingerprint(spec)
        prefix = f"[{position}/{len(names)}] {name}"
        records = None if args.force else up_to_date(spec, args.repository, current, args.ensembles)
        if records is not None:
            summary = ", ".join(f"v{r.version} {r.metric_name} {r.metric:.4f}" for r in records)
            print(f"{prefix}: up to date ({summary}); --force re-exports", flush=True)
            continue
        print(f"{prefix}: training and exporting from {spec.source}...", flush=True)
        try:
            records = export_model(spec, args.repository, current, args.ensembles)
        except ExportError as exc:
            print(f"{prefix}: FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print_records(prefix, records)
    if not finish_repository(args):
        failed.append("generated configs")
    if failed:
        print(f"export failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def print_records(prefix: str, records) -> None:
    for record in records:
        worst = max(record.parity_max_abs_error.values())
        print(
            f"{prefix} v{record.version}: {record.format} ok after {record.export_s:.1f} s: parity max |err| "
            f"{worst:.2g} <= {record.tolerance:g}, held-out {record.metric_name} {record.metric:.4f}, "
            f"{record.size_bytes / 1024:.1f} KiB",
            flush=True,
        )


def finish_repository(args) -> bool:
    """The generated configs (written or checked) and the model card; False when a generated file drifted.

    With ``--check-configs`` nothing is written, the card included: its figures come from this machine's export
    (they differ between CPUs), so it is neither rewritten nor compared."""
    in_step = sync_generated(args)
    card = args.repository / CARD_NAME
    if not args.check_configs:
        write_if_changed(card, render(args.repository, list(MODELS.values())))
        print(f"model card: {card}")
    return in_step


def export_checkpoint(spec, args) -> int:
    """``--model NAME --checkpoint FILE``: the weights through the model's own checks, no training.

    Into the project's repository the generated files follow as after any export; into another one (a serving
    copy) only this model's config, labels and card are written beside it.
    """
    from tritonkit.export.builtin.checkpoint import loader
    from tritonkit.export.builtin.generate import model_files

    prefix = f"[1/1] {spec.name}"
    try:
        build_model, sha256 = loader(spec, args.checkpoint)
        print(f"{prefix}: exporting the checkpoint {args.checkpoint} (sha256 {sha256[:12]}...)", flush=True)
        records = export_model(spec, args.repository, fingerprint(spec, checkpoint_sha256=sha256), args.ensembles,
                               build_model=build_model, source_sha256=sha256)
    except ExportError as exc:
        print(f"{prefix}: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print_records(prefix, records)
    if args.repository.resolve() == paths.model_repository().resolve():
        return 0 if finish_repository(args) else 1
    for path, text in model_files(spec, args.repository).items():
        write_if_changed(path, text)
    exported = [other for other in MODELS.values() if (args.repository / other.name / "1" / "model.onnx").is_file()]
    write_if_changed(args.repository / CARD_NAME, render(args.repository, exported))
    print(f"{args.repository}: {spec.name} and its config; serve it in place of the project's copy with "
          f"--model-repository {args.repository} --model-repository {args.ensembles} and the project's other models",
          flush=True)
    return 0


def sync_generated(args) -> bool:
    """Writes (or with --check-configs, checks) every config.pbtxt and labels.txt; False on drift."""
    try:
        files = generated_files(args.repository, args.ensembles)
    except ValueError as exc:
        print(f"configs: FAILED: {exc}", file=sys.stderr)
        return False
    written, drifts = sync(files, check=args.check_configs)
    for path in written:
        print(f"configs: regenerated {path}; review and commit it", flush=True)
    for drift in drifts:
        print(f"configs: {drift}", file=sys.stderr, flush=True)
    print(f"configs: {len(files)} generated files {'checked' if args.check_configs else 'in step'}"
          + (f", {len(drifts)} differ" if drifts else ""), flush=True)
    return not drifts


def export_engines(specs, repository: Path, gpu_repository: Path) -> int:
    try:
        onnx2trt.require_tensorrt()
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    eligible = [spec for spec in specs if spec.tensorrt]
    failed = []
    for position, spec in enumerate(eligible, start=1):
        prefix = f"[{position}/{len(eligible)}] {spec.name}"
        print(f"{prefix}: building a TensorRT FP16 engine...", flush=True)
        try:
            errors = tensorrt.export_engine(spec, repository, gpu_repository)
        except ExportError as exc:
            print(f"{prefix}: FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(spec.name)
            continue
        print(f"{prefix}: ok: max |err| vs ONNX Runtime {max(errors.values()):.2g} <= {spec.fp16_atol:g}", flush=True)
    copied = tensorrt.complete_repository(repository, gpu_repository)
    print(f"{gpu_repository}: engines, and the ONNX models without one ({', '.join(copied) or 'none'}); serve it "
          f"with {paths.ensembles()} alone (deploy/kubernetes/overlays/gpu)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
