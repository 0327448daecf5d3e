"""``python -m export``: train, convert, verify and write every model into the Triton repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export import ExportError
from export.pipeline import export_model, fingerprint, up_to_date
from export.registry import MODELS

DEFAULT_REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Train each model (seeded), export it to ONNX, check the graph, compare ONNX Runtime with "
        "the source framework on held-out rows, and write model.onnx + config.pbtxt into the repository. "
        "Up-to-date models are skipped.",
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
        "--repository", type=Path, default=DEFAULT_REPOSITORY, help="model repository to write (default: %(default)s)"
    )
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for spec in MODELS.values():
            print(f"{spec.name:22} {spec.source:14} held-out {spec.metric_name}, parity atol {spec.atol:g}")
        return 0
    names = args.model or list(MODELS)
    current = fingerprint()
    failed = []
    for position, name in enumerate(names, start=1):
        spec = MODELS[name]
        prefix = f"[{position}/{len(names)}] {name}"
        record = None if args.force else up_to_date(spec, args.repository, current)
        if record is not None:
            print(f"{prefix}: up to date ({record.metric_name} {record.metric:.4f}); --force re-exports", flush=True)
            continue
        print(f"{prefix}: training and exporting from {spec.source}...", flush=True)
        try:
            record, config_changed = export_model(spec, args.repository, current)
        except ExportError as exc:
            print(f"{prefix}: FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        worst = max(record.parity_max_abs_error.values())
        print(
            f"{prefix}: ok in {record.export_s:.1f} s: parity max |err| {worst:.2g} <= {record.tolerance:g}, "
            f"held-out {record.metric_name} {record.metric:.4f}, {record.size_bytes / 1024:.1f} KiB",
            flush=True,
        )
        if config_changed:
            print(f"{prefix}: config.pbtxt changed; review and commit it", flush=True)
    if failed:
        print(f"export failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
