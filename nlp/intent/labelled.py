"""Read labelled training rows from CSV or JSONL, with errors that point at the line.

Teams bring data from spreadsheets, ticket exports and our own `export-labels`; the
usual failures are a misspelled column, a blank cell or one broken JSON line among
thousands. Each becomes a `LabelledDataError` naming the file, the line and what was
expected, and nothing is silently skipped, so a model is never trained on less data
than the operator believes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


class LabelledDataError(ValueError):
    """Labelled data that cannot be used as given; the message says where and why."""


def read_labelled(
    path: str | Path, *, text_field: str = "text", label_field: str = "label"
) -> list[tuple[str, str]]:
    """All (text, label) rows of a CSV or JSONL file (format chosen by extension)."""
    rows = [
        row
        for part in read_labelled_splits(
            path, text_field=text_field, label_field=label_field, min_labels=2
        ).values()
        for row in part
    ]
    return rows


def read_labelled_splits(
    path: str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    split_field: str = "split",
    min_labels: int = 2,
) -> dict[str, list[tuple[str, str]]]:
    """Rows grouped by the optional `split_field` value ("" when a row has none)."""
    file = Path(path)
    if not file.is_file():
        raise LabelledDataError(f"{file}: no such file")
    splits: dict[str, list[tuple[str, str]]] = {}
    labels: set[str] = set()
    for line_no, record in _records(file):
        text = _field(record, text_field, file, line_no)
        label = _field(record, label_field, file, line_no).strip()
        split = str(record.get(split_field) or "")
        splits.setdefault(split, []).append((text, label))
        labels.add(label)
    if not splits:
        raise LabelledDataError(f"{file}: no rows (the file is empty)")
    if len(labels) < min_labels:
        raise LabelledDataError(
            f"{file}: found only the label(s) {sorted(labels)}; "
            f"a classifier needs at least {min_labels} different labels"
        )
    return splits


def _records(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = file.suffix.lower()
    if suffix == ".csv":
        yield from _csv_records(file)
    elif suffix in JSONL_SUFFIXES:
        yield from _jsonl_records(file)
    else:
        raise LabelledDataError(
            f"{file}: unknown extension {suffix or '(none)'}; use .csv or .jsonl"
        )


def _csv_records(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            if None in record:
                raise LabelledDataError(f"{file}:{reader.line_num}: more cells than header columns")
            yield reader.line_num, record


def _jsonl_records(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with file.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelledDataError(f"{file}:{line_no}: invalid JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise LabelledDataError(f"{file}:{line_no}: expected a JSON object per line")
            yield line_no, record


def _field(record: dict[str, Any], name: str, file: Path, line_no: int) -> str:
    if name not in record:
        columns = ", ".join(sorted(str(k) for k in record)) or "(none)"
        raise LabelledDataError(
            f"{file}:{line_no}: missing column {name!r} (columns present: {columns})"
        )
    value = record[name]
    if not isinstance(value, str):
        raise LabelledDataError(f"{file}:{line_no}: {name!r} must be text, got {value!r}")
    if not value.strip():
        raise LabelledDataError(f"{file}:{line_no}: {name!r} is empty")
    return value
