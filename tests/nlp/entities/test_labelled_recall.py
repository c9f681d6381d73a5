"""Recall and precision on the labelled support-mail snippets stay where they are."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "entities" / "labelled.jsonl"


def test_labelled_set_recall_and_precision() -> None:
    from nlp.entities.extract import extract_entities

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 120
    tp = fn = fp = 0
    for row in rows:
        gold = Counter((e["label"], e["text"]) for e in row["entities"])
        found = Counter((e.label, e.text) for e in extract_entities(row["text"]))
        tp += sum((gold & found).values())
        fn += sum((gold - found).values())
        fp += sum((found - gold).values())
    assert tp / (tp + fn) >= 0.90
    assert tp / (tp + fp) >= 0.85


def test_labelled_set_covers_every_kind_of_snippet() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    kinds = Counter(row["kind"] for row in rows)
    assert {"prose", "log", "signature", "table", "forwarded", "de", "fr", "es"} <= set(kinds)
