"""``model_repository/MODELS.md``: one row per exported version, from the ``export.json`` records."""

from __future__ import annotations

from pathlib import Path

from tritonkit.export.pipeline import RECORD_NAME, read_record
from tritonkit.export.spec import ModelSpec

CARD_NAME = "MODELS.md"


def render(specs: list[ModelSpec], repository: Path) -> str:
    lines = [
        "# Models",
        "",
        "Written by `make export` (`python -m tritonkit.export`) from each version's `export.json`; "
        "do not edit by hand.",
        "Parity: max absolute error of the ONNX graph against the source framework on the held-out rows.",
        "",
        "| model | version | source | format | size | parity max error (tolerance) | held-out metric | export time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in specs:
        for version in spec.versions:
            record = read_record(repository / spec.name / str(version) / RECORD_NAME)
            if record is None:
                lines.append(f"| `{spec.name}` | {version} | {spec.source} | not exported | | | | |")
                continue
            worst = max(record.parity_max_abs_error.values())
            lines.append(
                f"| `{spec.name}` | {version} | {spec.source} | {record.format} | {_size(record.size_bytes)} "
                f"| {worst:.2g} ({record.tolerance:g}) | {record.metric_name} {record.metric:.4f} "
                f"| {record.export_s:.1f} s |"
            )
    records = [record for spec in specs for version in spec.versions
               if (record := read_record(repository / spec.name / str(version) / RECORD_NAME))]
    details = [(spec, record) for spec in specs for record in records if record.model == spec.name and record.details]
    if details:
        lines += ["", "## Further held-out figures", ""]
        lines += [f"- `{spec.name}` v{record.version}: "
                  + ", ".join(f"{name} {_figure(value)}" for name, value in record.details.items())
                  for spec, record in details]
    lines += _breakdowns(records)
    lines += ["", "## What each model is", ""]
    lines += [f"- `{spec.name}`: {spec.description}." for spec in specs]
    return "\n".join(lines) + "\n"


def _breakdowns(records) -> list[str]:
    """One table per breakdown title: a row per condition, a column per model version that reports it."""
    lines: list[str] = []
    for title in dict.fromkeys(record.breakdown_title for record in records if record.breakdown):
        columns = [record for record in records if record.breakdown_title == title and record.breakdown]
        names = list(dict.fromkeys(name for record in columns for name in record.breakdown))
        lines += ["", f"## {title}", "",
                  "| | " + " | ".join(f"`{record.model}` v{record.version}" for record in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        lines += [f"| {name} | " + " | ".join(_cell(record.breakdown.get(name)) for record in columns) + " |"
                  for name in names]
    return lines


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _figure(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def _size(size_bytes: int) -> str:
    if size_bytes >= 1 << 20:
        return f"{size_bytes / (1 << 20):.1f} MiB"
    return f"{size_bytes / 1024:.1f} KiB"
