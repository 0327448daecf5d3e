"""Model cards: the repository's ``MODELS.md`` (a row per exported version, from the ``export.json`` records) and
one ``CARD.md`` per model (what it is for, its limits and its license).

``MODELS.md`` lists the built-in models of the registry first, then every other model folder with records: the
models a user added with ``export add``. A built-in model's ``CARD.md`` is generated from its spec and committed;
an added model's is written by ``export add`` from its figures and the user's ``--card`` file.
"""

from __future__ import annotations

import re
from pathlib import Path

from tritonkit.export.repository.record import RECORD_NAME, ExportRecord, read_record, records_of

CARD_NAME = "MODELS.md"
MODEL_CARD_NAME = "CARD.md"  # beside config.pbtxt; Triton ignores it
NOTICES = "THIRD_PARTY_NOTICES.md"  # at the project's root: the terms of every bundled model and dataset
CARD_SECTIONS = ("Intended use", "Limitations", "License")  # what every model card must say


def render(repository: Path, specs: list | tuple = ()) -> str:
    """``MODELS.md`` of ``repository``: the registry's ``specs`` (any order), then the added models."""
    repository = Path(repository)
    lines = [
        "# Models",
        "",
        "Written by `make export` (`python -m tritonkit.export`) and `python -m tritonkit.export add` from each "
        "version's `export.json`; do not edit by hand.",
        "Parity: max absolute error of the ONNX graph against the source framework on the held-out rows. "
        f"Each model's intended use, limitations and license: its `{MODEL_CARD_NAME}`.",
    ]
    if specs:
        lines += _builtin_rows(repository, specs)
    added = added_records(repository, {spec.name for spec in specs})
    if added:
        lines += _added_rows(added)
    if specs:
        lines += _builtin_details(repository, specs)
    return "\n".join(lines) + "\n"


def _builtin_rows(repository: Path, specs) -> list[str]:
    lines = ["", "| model | version | source | format | size | parity max error (tolerance) | held-out metric "
             "| export time |", "|---|---|---|---|---|---|---|---|"]
    for spec in specs:
        for version in spec.versions:
            record = read_record(repository / spec.name / str(version) / RECORD_NAME)
            if record is None:
                lines.append(f"| `{spec.name}` | {version} | {spec.source} | not exported | | | | |")
                continue
            lines.append(
                f"| `{spec.name}` | {version} | {spec.source} | {record.format} | {_size(record.size_bytes)} "
                f"| {_worst(record)} ({record.tolerance:g}) | {record.metric_name} {record.metric:.4f} "
                f"| {record.export_s:.1f} s |"
            )
    return lines


def added_records(repository: Path, builtin: set[str]) -> list[ExportRecord]:
    """The records of every model folder that is not a built-in one, by model then version."""
    if not repository.is_dir():
        return []
    folders = sorted(child for child in repository.iterdir() if child.is_dir() and child.name not in builtin)
    return [record for folder in folders for record in records_of(folder)]


def _added_rows(records: list[ExportRecord]) -> list[str]:
    lines = ["", "## Added models (`python -m tritonkit.export add`)", "",
             "| model | version | source | source SHA-256 | format | size | parity max error (tolerance), rows "
             "checked | INT8 agreement with FP32 | export time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        agreement = ", ".join(f"{name} {_figure(value)}" for name, value in record.agreement.items())
        lines.append(
            f"| `{record.model}` | {record.version} | {record.source} | `{record.source_sha256[:16]}` "
            f"| {record.format} | {_size(record.size_bytes)} | {_worst(record)} "
            f"({'judged by agreement' if record.agreement else f'{record.tolerance:g}'}), "
            f"{int(record.metric)} | {agreement} | {record.export_s:.1f} s |")
    return lines


def _builtin_details(repository: Path, specs) -> list[str]:
    records = [record for spec in specs for version in spec.versions
               if (record := read_record(repository / spec.name / str(version) / RECORD_NAME))]
    details = [(spec, record) for spec in specs for record in records if record.model == spec.name and record.details]
    lines: list[str] = []
    if details:
        lines += ["", "## Further held-out figures", ""]
        lines += [f"- `{spec.name}` v{record.version}: "
                  + ", ".join(f"{name} {_figure(value)}" for name, value in record.details.items())
                  for spec, record in details]
    lines += _breakdowns(records)
    lines += ["", "## What each model is", ""]
    lines += [f"- `{spec.name}`: {spec.description}." for spec in specs]
    return lines


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


def card_sections(text: str) -> dict[str, str]:
    """The ``## Heading`` sections of a Markdown card, by heading (case as written)."""
    sections: dict[str, str] = {}
    for match in re.finditer(r"^##[ \t]+(.+?)[ \t]*\n(.*?)(?=^##[ \t]|\Z)", text, flags=re.M | re.S):
        sections[match.group(1).strip()] = match.group(2).strip()
    return sections


def model_card(name: str, summary: str, facts: list[tuple[str, str]], sections: dict[str, str],
               missing_fix: str) -> str:
    """One model's ``CARD.md``: a summary, a table of facts, then every section of ``CARD_SECTIONS`` (a missing
    one says so and how to give it) and any further section the author wrote."""
    lines = [f"# {name}", "", summary, "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in facts]
    wanted = {heading.lower(): heading for heading in CARD_SECTIONS}
    given = {heading.lower(): (heading, body) for heading, body in sections.items()}
    for key, heading in wanted.items():
        body = given[key][1] if key in given and given[key][1] else f"**Missing.** {missing_fix}"
        lines += ["", f"## {heading}", "", body]
    for key, (heading, body) in given.items():
        if key not in wanted:
            lines += ["", f"## {heading}", "", body]
    return "\n".join(lines) + "\n"


def missing_sections(text: str) -> list[str]:
    """The ``CARD_SECTIONS`` a ``CARD.md`` marks as missing."""
    sections = {heading.lower(): body for heading, body in card_sections(text).items()}
    return [heading for heading in CARD_SECTIONS
            if not sections.get(heading.lower()) or sections[heading.lower()].startswith("**Missing.**")]


def _worst(record: ExportRecord) -> str:
    return f"{max(record.parity_max_abs_error.values()):.2g}" if record.parity_max_abs_error else "n/a"


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _figure(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def _size(size_bytes: int) -> str:
    if size_bytes >= 1 << 20:
        return f"{size_bytes / (1 << 20):.1f} MiB"
    return f"{size_bytes / 1024:.1f} KiB"
