"""Recall and precision of entity extraction on labelled support-mail snippets.

The set (`tests/fixtures/entities/labelled.jsonl`) holds prose, log lines, signatures,
tables as `html_to_text` renders them, forwarded parts and German/French/Spanish/
Dutch/Italian sentences, each with every entity an annotator would mark. A found
entity counts only if label and text match exactly; repeats count as often as they
occur (multisets). Conventions of the gold texts: a version keeps a written "v" or
"version" and a "name/" prefix, but a number after a component name is the number
alone ("PostgreSQL 14.7" → "14.7"); a status is its three digits; an account id is the
id without the word "account"; a host name has no port. PRODUCT and SERVICE come from
operator phrases and are not in the set.

`--baseline PATH` scores another copy of the extractor module the same way, side by
side (for example the previous version saved before a change), so a number is always
read against what it replaced.

Run: .venv/bin/python bench/entity_recall.py [--baseline /tmp/old_extract.py] [-v]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlp.entities.extract import extract_entities  # noqa: E402

DATA = ROOT / "tests" / "fixtures" / "entities" / "labelled.jsonl"
Pair = tuple[str, str]
Extractor = Callable[[str], list[Pair]]


def load(path: Path = DATA) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def current(text: str) -> list[Pair]:
    return [(e.label, e.text) for e in extract_entities(text)]


def from_module(path: str) -> Extractor:
    spec = importlib.util.spec_from_file_location("baseline_entities", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)

    def run(text: str) -> list[Pair]:
        return [(e.label, e.text) for e in module.extract_entities(text)]

    return run


class Score:
    """True positives, misses and false alarms, overall and per label."""

    def __init__(self) -> None:
        self.tp: Counter[str] = Counter()
        self.fn: Counter[str] = Counter()
        self.fp: Counter[str] = Counter()
        self.misses: list[tuple[str, Pair]] = []
        self.false: list[tuple[str, Pair]] = []

    def add(self, text: str, gold: list[Pair], found: list[Pair]) -> None:
        g, f = Counter(gold), Counter(found)
        for pair, n in (g & f).items():
            self.tp[pair[0]] += n
        for pair, n in (g - f).items():
            self.fn[pair[0]] += n
            self.misses.extend([(text, pair)] * n)
        for pair, n in (f - g).items():
            self.fp[pair[0]] += n
            self.false.extend([(text, pair)] * n)

    def recall(self, label: str | None = None) -> float:
        tp = self._sum(self.tp, label)
        return tp / (tp + self._sum(self.fn, label)) if tp + self._sum(self.fn, label) else 1.0

    def precision(self, label: str | None = None) -> float:
        tp = self._sum(self.tp, label)
        return tp / (tp + self._sum(self.fp, label)) if tp + self._sum(self.fp, label) else 1.0

    def gold(self, label: str) -> int:
        return self.tp[label] + self.fn[label]

    @staticmethod
    def _sum(counter: Counter[str], label: str | None) -> int:
        return counter[label] if label else sum(counter.values())


def score(rows: list[dict[str, Any]], extractor: Extractor) -> Score:
    result = Score()
    for row in rows:
        gold = [(e["label"], e["text"]) for e in row["entities"]]
        result.add(row["text"], gold, extractor(row["text"]))
    return result


def report(scores: dict[str, Score]) -> str:
    labels = sorted({lab for s in scores.values() for lab in (*s.tp, *s.fn, *s.fp)})
    names = list(scores)
    head = f"{'label':<14}{'gold':>6}" + "".join(f"{n + ' R':>12}{n + ' P':>12}" for n in names)
    lines = [head, "-" * len(head)]
    first = scores[names[0]]
    for label in labels:
        cells = "".join(
            f"{s.recall(label):>12.3f}{s.precision(label):>12.3f}" for s in scores.values()
        )
        lines.append(f"{label:<14}{first.gold(label):>6}{cells}")
    total = sum(first.gold(lab) for lab in labels)
    cells = "".join(f"{s.recall():>12.3f}{s.precision():>12.3f}" for s in scores.values())
    lines += ["-" * len(head), f"{'overall':<14}{total:>6}{cells}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--baseline", help="path of another extractor module to compare")
    parser.add_argument("-v", "--verbose", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    rows = load(args.data)
    scores = {"now": score(rows, current)}
    if args.baseline:
        scores = {"before": score(rows, from_module(args.baseline)), **scores}
    print(f"{len(rows)} snippets, exact label+text match\n")
    print(report(scores))
    if args.verbose:
        now = scores["now"]
        print("\nmissed:")
        for text, (label, value) in now.misses:
            print(f"  {label:<13} {value!r:<32} in {text[:70]!r}")
        print("\nfalse alarms:")
        for text, (label, value) in now.false:
            print(f"  {label:<13} {value!r:<32} in {text[:70]!r}")


if __name__ == "__main__":
    main()
