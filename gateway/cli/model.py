"""`supportgate train | eval | export-labels`: the intent model's life cycle for operators.

The loop a team runs is: reps relabel mail in the review UI (LabelCorrection rows),
`export-labels` turns those into JSONL training rows, `train` fits and calibrates a
model directory, `eval` shows on held-out mail whether the new model is better before
`[nlp] model_dir` points at it. The heavy imports (spaCy, scikit-learn) happen inside
the handlers so other commands start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from sqlmodel import Session, col, select

from gateway.config import Config
from storage.db import init_db, make_engine
from storage.models import LabelCorrection


def register(sub: argparse._SubParsersAction[Any]) -> None:
    from nlp.intent.train_args import add_train_arguments

    p = sub.add_parser("train", help="train an intent model from labelled CSV/JSONL")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate an intent model on labelled data")
    p.add_argument("--model", default=None, help="model directory (default: [nlp] model_dir)")
    p.add_argument("--data", required=True, help="CSV or JSONL file with text and label")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--threshold", type=float, default=None, help="abstain below this")
    p.add_argument("--oos-label", default=None, help="label of out-of-scope rows")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export-labels", help="write reps' label corrections as JSONL")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export_labels)


def cmd_train(args: argparse.Namespace, config: Config) -> int:
    from nlp.intent.model import IntentModelError
    from nlp.intent.train import LabelledDataError, train_from_args

    try:
        report = train_from_args(args)
    except (LabelledDataError, IntentModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model written to {report.out_dir}")
    print(f"version      {report.version}")
    print(f"labels       {len(report.labels)}: {', '.join(report.labels)}")
    rows = f"{report.n_train} train, {report.n_heldout} held out for calibration"
    if report.refit:
        rows += f", then refitted on all {report.n_train + report.n_heldout}"
    print(f"rows         {rows}")
    print(f"temperature  {report.temperature:.3f}  textcat weight {report.spacy_weight:.2f}")
    for name in ("heldout", "test"):
        m = report.metrics.get(name)
        if m:
            print(
                f"{name:<12} accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
                f"ECE {m['ece_uncalibrated']:.3f} -> {m['ece']:.3f}  "
                f"acc@80% {m['accuracy_at_80']:.3f}  (n={m['n']})"
            )
    print(f"took         {report.seconds:.1f} s")
    return 0


def cmd_eval(args: argparse.Namespace, config: Config) -> int:
    from nlp.intent.evaluate import guess_oos_label
    from nlp.intent.model import IntentModel, IntentModelError
    from nlp.intent.train import LabelledDataError, evaluate, read_labelled

    threshold = config.nlp.abstain_threshold if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 1.0:
        print("error: --threshold must be between 0 and 1", file=sys.stderr)
        return 2
    model_dir = args.model or (
        str(config.resolve_path(config.nlp.model_dir)) if config.nlp.model_dir else None
    )
    try:
        model = IntentModel.load(model_dir)
        rows = read_labelled(args.data, text_field=args.text_field, label_field=args.label_field)
    except (LabelledDataError, IntentModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    oos_label = args.oos_label or guess_oos_label(model.labels, (label for _, label in rows))
    if oos_label and not args.oos_label:
        print(f"note: treating {oos_label!r} rows as out of scope", file=sys.stderr)
    report = evaluate(model, rows, threshold=threshold, oos_label=oos_label)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print(format_report(report.to_json()))
    return 0


def format_report(data: dict[str, Any]) -> str:
    """A plain-text table of an evaluation report, readable in any terminal or log."""
    lines = [
        f"model {data['model_version']}  rows {data['n']}  threshold {data['threshold']:.2f}",
        f"accuracy            {data['accuracy']:.3f}",
        f"macro-F1            {data['macro_f1']:.3f}",
        f"ECE (15 bins)       {data['ece']:.3f}  (uncalibrated {data['ece_uncalibrated']:.3f})",
        f"accuracy @80% cov.  {data['accuracy_at_80']:.3f}",
        f"answered            {data['coverage']:.3f}  "
        f"(accuracy when answered {data['accuracy_when_answered']:.3f})",
    ]
    if data["oos_recall"] is not None:
        lines.append(f"out-of-scope rows   {data['n_oos']}")
        lines.append(f"oos recall          {data['oos_recall']:.3f}")
        lines.append(f"in-scope accuracy   {data['in_scope_accuracy']:.3f}")
    lines.append("")
    width = max([len("label")] + [len(k) for k in data["per_label"]])
    lines.append(f"{'label':<{width}}  precision  recall     f1  support")
    for label, m in sorted(data["per_label"].items()):
        lines.append(
            f"{label:<{width}}  {m['precision']:>9.3f}  {m['recall']:>6.3f}  "
            f"{m['f1']:>5.3f}  {m['support']:>7d}"
        )
    return "\n".join(lines)


def cmd_export_labels(args: argparse.Namespace, config: Config) -> int:
    engine = make_engine(config.database_url)
    init_db(engine)
    try:
        with Session(engine) as session:
            corrections = list(
                session.exec(
                    select(LabelCorrection).order_by(
                        col(LabelCorrection.at), col(LabelCorrection.id)
                    )
                )
            )
    finally:
        engine.dispose()
    rows, superseded, empty = label_rows(corrections)
    if args.out:
        _write_atomic(Path(args.out), rows)
    else:
        _write_rows(sys.stdout, rows)
    where = args.out or "stdout"
    print(
        f"exported {len(rows)} labelled rows to {where} "
        f"({superseded} superseded by a later correction, {empty} without text skipped)",
        file=sys.stderr,
    )
    return 0


def label_rows(corrections: list[LabelCorrection]) -> tuple[list[dict[str, Any]], int, int]:
    """One training row per message: its latest correction wins."""
    latest: dict[int, LabelCorrection] = {}
    for correction in corrections:
        latest[correction.message_pk] = correction
    superseded = len(corrections) - len(latest)
    rows = [
        {
            "text": c.text,
            "label": c.new_label,
            "message_pk": c.message_pk,
            "actor": c.actor,
            "at": c.at.isoformat(),
        }
        for c in sorted(latest.values(), key=lambda c: (c.at, c.id or 0))
        if c.text.strip()
    ]
    return rows, superseded, len(latest) - len(rows)


def _write_rows(handle: IO[str], rows: list[dict[str, Any]]) -> None:
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        _write_rows(handle, rows)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
