"""Train and evaluate intent models on whatever labelled mail a team has.

Training is deliberately one function with few knobs: a support team retrains from
its reps' corrections, not from a research notebook. It fits the two ensemble parts
on most rows, holds out a stratified slice to choose the mixing weights and the
calibration temperature (so the confidence shown to reps is honest), and writes a
self-describing directory atomically: a crash mid-way never leaves a half-written
model where the gateway would load it.

This module is the entry point and the command line; the pieces it runs live beside
it: `fit` (the ensemble's parts), `mixing` (weights and temperature from the held-out
slice) and `model_dir` (the version hash, meta.json and the atomic write).

Rebuild the shipped model with:
    python -m nlp.intent.train --data nlp/data/intents.jsonl --out nlp/data/intent_model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nlp.intent.evaluate import EvalReport, evaluate, summarise
from nlp.intent.fit import (
    SVM_WEIGHTS,
    WEIGHTS,
    TrainSettings,
    fit_components,
    fit_linear,
    fit_textcat,
    stratified_split,
    textcat_epochs,
)
from nlp.intent.labelled import LabelledDataError, read_labelled, read_labelled_splits
from nlp.intent.mixing import calibrate
from nlp.intent.model import IntentModel
from nlp.intent.model_dir import build_meta, check_target, data_hash, write_model
from nlp.intent.train_args import add_train_arguments

# Importers (the `supportgate` CLI, benchmarks, tests) reach the training pieces here.
__all__ = [
    "SVM_WEIGHTS",
    "WEIGHTS",
    "EvalReport",
    "LabelledDataError",
    "TrainReport",
    "TrainSettings",
    "calibrate",
    "data_hash",
    "evaluate",
    "fit_components",
    "fit_linear",
    "fit_textcat",
    "main",
    "read_labelled",
    "read_labelled_splits",
    "stratified_split",
    "textcat_epochs",
    "train_from_args",
    "train_from_file",
    "train_model",
    "write_model",
]


@dataclass(frozen=True)
class TrainReport:
    out_dir: str
    version: str
    labels: tuple[str, ...]
    n_train: int
    n_heldout: int
    temperature: float
    spacy_weight: float
    seconds: float
    svm_weight: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    # True when the written model was refitted on train + held-out rows.
    refit: bool = False


def train_model(
    rows: Sequence[tuple[str, str]],
    *,
    out_dir: str | Path,
    seed: int = 0,
    progress: bool = True,
    heldout_fraction: float = 0.15,
    settings: TrainSettings | None = None,
) -> TrainReport:
    """Fit, calibrate and write a model directory for `rows` of (text, label)."""
    started = time.perf_counter()
    settings = settings or TrainSettings()
    out = Path(out_dir)
    _check_rows(rows)
    check_target(out)
    labels = tuple(sorted({label for _, label in rows}))
    fit_rows, held_rows = stratified_split(rows, heldout_fraction, seed)
    planned = _planned_steps(settings, len(fit_rows), len(rows), settings.refit and bool(held_rows))
    with _progress(progress, total=planned) as step:
        linear, textcat = fit_components(fit_rows, labels, settings, seed, step)
        step("calibrating")
        weight, temperature, tried = calibrate(
            linear, textcat, held_rows, labels, settings.spacy_weights, settings.svm_weights
        )
        version = "intent-" + data_hash(rows, seed, settings)[:12]
        meta = build_meta(
            version,
            labels,
            weight,
            temperature,
            len(fit_rows),
            len(held_rows),
            settings,
            linear.svm_weight,
        )
        metrics: dict[str, Any] = {"weights_tried": tried}
        if held_rows:
            model = IntentModel(
                labels=labels,
                linear=linear,
                textcat=textcat,
                spacy_weight=weight,
                temperature=temperature,
                version=version,
            )
            # Measured before any refit, so these numbers are honest held-out numbers.
            metrics["heldout"] = summarise(evaluate(model, held_rows, threshold=0.5))
        if settings.refit and held_rows:
            step("refitting on all rows")
            keep_textcat = settings.use_textcat and weight > 0
            svm_weight, svm_scale = linear.svm_weight, linear.svm_scale
            linear, textcat = fit_components(
                rows,
                labels,
                replace(
                    settings,
                    use_textcat=keep_textcat,
                    svm_weights=settings.svm_weights if svm_weight > 0 else (),
                ),
                seed,
                step,
            )
            linear.svm_weight, linear.svm_scale = svm_weight, svm_scale
    meta["metrics"] = metrics
    write_model(out, linear, textcat if weight > 0 else None, meta)
    return TrainReport(
        out_dir=str(out),
        version=version,
        labels=labels,
        n_train=len(fit_rows),
        n_heldout=len(held_rows),
        temperature=temperature,
        spacy_weight=weight,
        seconds=round(time.perf_counter() - started, 3),
        svm_weight=linear.svm_weight,
        metrics=metrics,
        refit=bool(settings.refit and held_rows),
    )


def _planned_steps(settings: TrainSettings, n_fit: int, n_all: int, refit: bool) -> int:
    """How many progress steps training takes (the refit may skip the textcat: fewer)."""
    textcat = settings.use_textcat
    total = 1 + (textcat_epochs(settings, n_fit) if textcat else 0) + 1
    if refit:
        total += 2 + (textcat_epochs(settings, n_all) if textcat else 0)
    return total


def _check_rows(rows: Sequence[tuple[str, str]]) -> None:
    if not rows:
        raise LabelledDataError("no training rows")
    counts = Counter(label for _, label in rows)
    if len(counts) < 2:
        raise LabelledDataError(f"training needs at least two labels, found only {set(counts)}")


@contextmanager
def _progress(enabled: bool, *, total: int) -> Iterator[Any]:
    """A rich progress bar on the terminal (stderr); a no-op callback otherwise."""
    if not enabled:
        yield lambda _description: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description:<26}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=total)

        def step(description: str) -> None:
            bar.update(task, description=description, advance=1)

        yield step
        bar.update(task, completed=total)


def train_from_args(args: argparse.Namespace) -> TrainReport:
    """Run training as the flags of `add_train_arguments` ask."""
    floor = args.min_textcat_weight
    grid = tuple(w for w in WEIGHTS if w >= floor) or (floor,)
    return train_from_file(
        args.data,
        out_dir=args.out,
        text_field=args.text_field,
        label_field=args.label_field,
        seed=args.seed,
        test_split=args.test_split,
        progress=sys.stderr.isatty(),
        settings=TrainSettings(spacy_weights=grid),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.intent.train", description=__doc__)
    add_train_arguments(parser)
    try:
        report = train_from_args(parser.parse_args(argv))
    except LabelledDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(report), indent=2))
    return 0


def train_from_file(
    path: str | Path,
    *,
    out_dir: str | Path,
    text_field: str = "text",
    label_field: str = "label",
    seed: int = 0,
    test_split: str = "test",
    progress: bool = True,
    settings: TrainSettings | None = None,
) -> TrainReport:
    """Train on every split but `test_split`, then record test metrics in meta.json."""
    splits = read_labelled_splits(path, text_field=text_field, label_field=label_field)
    test_rows = splits.pop(test_split, [])
    rows = [row for part in splits.values() for row in part]
    report = train_model(rows, out_dir=out_dir, seed=seed, progress=progress, settings=settings)
    if not test_rows:
        return report
    model = IntentModel.load(out_dir)
    test = summarise(evaluate(model, test_rows, threshold=0.5))
    meta_path = Path(out_dir) / "meta.json"
    meta = json.loads(meta_path.read_text("utf-8"))
    meta["metrics"]["test"] = test
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
    metrics = dict(report.metrics, test=test)
    return TrainReport(**{**asdict(report), "labels": report.labels, "metrics": metrics})


if __name__ == "__main__":
    raise SystemExit(main())
