"""Train and evaluate intent models on whatever labelled mail a team has.

Training is deliberately one function with few knobs: a support team retrains from
its reps' corrections, not from a research notebook. It fits the two ensemble parts
on most rows, holds out a stratified slice to choose the mixing weights and the
calibration temperature (so the confidence shown to reps is honest), and writes a
self-describing directory atomically: a crash mid-way never leaves a half-written
model where the gateway would load it.

Rebuild the shipped model with:
    python -m nlp.intent.train --data nlp/data/intents.jsonl --out nlp/data/intent_model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nlp.intent.calibration import (
    FloatArray,
    apply_temperature,
    default_smoothing,
    fit_temperature,
    smoothed_nll,
)
from nlp.intent.evaluate import EvalReport, evaluate, summarise
from nlp.intent.labelled import LabelledDataError, read_labelled, read_labelled_splits
from nlp.intent.model import (
    CHAR_NGRAMS,
    FORMAT_VERSION,
    MAX_CHARS,
    PREPROCESS_VERSION,
    WORD_NGRAMS,
    IntentModel,
    LinearTextModel,
    mix,
    normalise,
    textcat_proba,
)
from nlp.intent.train_args import add_train_arguments

__all__ = [
    "EvalReport",
    "LabelledDataError",
    "TrainReport",
    "evaluate",
    "read_labelled",
    "read_labelled_splits",
    "train_model",
]

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
SVM_WEIGHTS = (0.0, 0.25, 0.5)


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters; the defaults keep the shipped model small (a few MB)."""

    c: float = 20.0
    max_word_features: int | None = 30_000
    max_char_features: int | None = 40_000
    bow_length: int = 2**15
    epochs: int | None = None
    dropout: float = 0.2
    use_textcat: bool = True
    # Candidate textcat weights in the mix; held-out NLL picks one.
    spacy_weights: tuple[float, ...] = WEIGHTS
    # Candidate weights of the linear SVM inside the linear part; () or (0.0,) skips it.
    svm_weights: tuple[float, ...] = SVM_WEIGHTS
    svm_c: float = 1.0
    # After choosing weight and temperature on the held-out slice, refit both parts on
    # every row: small support datasets cannot spare 15% of their examples.
    refit: bool = True


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
    _check_target(out)
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
        meta = _meta(
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


def textcat_epochs(settings: TrainSettings, n_rows: int) -> int:
    """Small sets get more passes; large ones fewer (each pass costs more)."""
    return settings.epochs or max(6, min(15, 80_000 // max(1, n_rows)))


def _planned_steps(settings: TrainSettings, n_fit: int, n_all: int, refit: bool) -> int:
    """How many progress steps training takes (the refit may skip the textcat: fewer)."""
    textcat = settings.use_textcat
    total = 1 + (textcat_epochs(settings, n_fit) if textcat else 0) + 1
    if refit:
        total += 2 + (textcat_epochs(settings, n_all) if textcat else 0)
    return total


def fit_components(
    rows: Sequence[tuple[str, str]],
    labels: Sequence[str],
    settings: TrainSettings,
    seed: int,
    step: Any,
) -> tuple[LinearTextModel, Any | None]:
    step("fitting linear model")
    linear = fit_linear(rows, labels, settings, seed)
    textcat = fit_textcat(rows, labels, settings, seed, step) if settings.use_textcat else None
    return linear, textcat


def stratified_split(
    rows: Sequence[tuple[str, str]], fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Hold out about `fraction` of each label; labels with < 3 rows stay in training."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {fraction}")
    by_label: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    rng = random.Random(seed)
    fit: list[tuple[str, str]] = []
    held: list[tuple[str, str]] = []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        n_held = max(1, round(len(group) * fraction)) if fraction and len(group) >= 3 else 0
        held.extend(group[:n_held])
        fit.extend(group[n_held:])
    return fit, held


def fit_linear(
    rows: Sequence[tuple[str, str]],
    labels: Sequence[str],
    settings: TrainSettings,
    seed: int,
) -> LinearTextModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [normalise(text) for text, _ in rows]
    word = TfidfVectorizer(
        ngram_range=WORD_NGRAMS, sublinear_tf=True, max_features=settings.max_word_features
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=CHAR_NGRAMS,
        sublinear_tf=True,
        max_features=settings.max_char_features,
    )
    try:
        word.fit(texts)
        char.fit(texts)
    except ValueError as exc:  # e.g. no text has a single word of two letters
        raise LabelledDataError(f"cannot build features from the training texts: {exc}") from exc
    model = LinearTextModel(
        word_vocab=_vocab_list(word.vocabulary_),
        word_idf=np.asarray(word.idf_, dtype=np.float64),
        char_vocab=_vocab_list(char.vocabulary_),
        char_idf=np.asarray(char.idf_, dtype=np.float64),
        coef=np.zeros((len(labels), 1)),
        intercept=np.zeros(len(labels)),
    )
    features = model.features(texts)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for _, label in rows])
    clf = LogisticRegression(
        C=settings.c, max_iter=3000, class_weight="balanced", random_state=seed
    )
    clf.fit(features, y)
    model.coef, model.intercept = _rows_per_label(clf.coef_, clf.intercept_, len(labels))
    if any(w > 0 for w in settings.svm_weights):
        from sklearn.svm import LinearSVC

        svm = LinearSVC(C=settings.svm_c, random_state=seed).fit(features, y)
        model.svm_coef, model.svm_intercept = _rows_per_label(
            svm.coef_, svm.intercept_, len(labels)
        )
    return model


def _rows_per_label(coef: Any, intercept: Any, n_labels: int) -> tuple[FloatArray, FloatArray]:
    """One weight row per label, also for binary models.

    Binary LR/SVM keep one row (for the second class); softmax over [0, w.x + b] gives
    the same probabilities (and argmax), so store both rows and predict uniformly.
    """
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    if n_labels == 2 and coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept


def _vocab_list(vocabulary: dict[str, int]) -> list[str]:
    ordered = [""] * len(vocabulary)
    for term, i in vocabulary.items():
        ordered[i] = term
    return ordered


def fit_textcat(
    rows: Sequence[tuple[str, str]],
    labels: Sequence[str],
    settings: TrainSettings,
    seed: int,
    step: Any,
) -> Any:
    import spacy
    from spacy.training import Example
    from spacy.util import fix_random_seed, minibatch

    fix_random_seed(seed)
    nlp = spacy.blank("en")
    model_cfg = {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": True,
        "ngram_size": 2,
        "no_output_layer": False,
        "length": settings.bow_length,
    }
    textcat: Any = nlp.add_pipe("textcat", config={"model": model_cfg})
    for label in labels:
        textcat.add_label(label)
    examples = [
        Example.from_dict(
            nlp.make_doc(normalise(text).lower()),
            {"cats": {lb: float(lb == label) for lb in labels}},
        )
        for text, label in rows
    ]
    spacy_log = logging.getLogger("spacy")
    level = spacy_log.level
    spacy_log.setLevel(logging.WARNING)  # "Created vocabulary" is noise on a CLI
    try:
        optimizer = nlp.initialize(lambda: examples)
    finally:
        spacy_log.setLevel(level)
    n = max(1, len(rows))
    epochs = textcat_epochs(settings, n)
    # Every update touches all bag-of-words weights (Adam), so the number of updates,
    # not the number of documents, is the cost: large sets get larger batches.
    batch_size = max(8, min(64, n // 150))
    rng = random.Random(seed)
    for epoch in range(epochs):
        step(f"textcat epoch {epoch + 1}/{epochs}")
        rng.shuffle(examples)
        for batch in minibatch(examples, size=batch_size):
            nlp.update(batch, drop=settings.dropout, sgd=optimizer)
    return nlp


def calibrate(
    linear: LinearTextModel,
    textcat: Any | None,
    held_rows: Sequence[tuple[str, str]],
    labels: Sequence[str],
    weights: Sequence[float] = WEIGHTS,
    svm_weights: Sequence[float] = SVM_WEIGHTS,
) -> tuple[float, float, list[dict[str, float]]]:
    """Choose the mixing weights and temperature with the lowest held-out NLL.

    Returns the textcat weight and the temperature; the SVM's scale and weight (when
    the linear part has an SVM) are set on `linear` itself.
    """
    if textcat is None:
        weights = (0.0,)
    if linear.svm_coef is None or not svm_weights:
        svm_weights = (0.0,)
    if not held_rows:
        linear.svm_weight = 0.0
        return (float(np.median(weights)) if textcat is not None else 0.0), 1.0, []
    texts = [normalise(text) for text, _ in held_rows]
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for _, label in held_rows])
    linear.svm_scale = 1.0
    lr_p, svm_p = linear.parts(linear.features(texts))
    if svm_p is not None:
        # The SVM's margins become probabilities with the scale that fits held-out NLL.
        linear.svm_scale = 1.0 / fit_temperature(svm_p, y)
        svm_p = apply_temperature(svm_p, 1.0 / linear.svm_scale)
    spacy_p = textcat_proba(textcat, texts, labels) if textcat is not None else None
    tried: list[dict[str, float]] = []
    best: tuple[float, float, float, float] | None = None
    for svm_weight in svm_weights:
        linear_p = lr_p if svm_p is None else (1.0 - svm_weight) * lr_p + svm_weight * svm_p
        for weight in weights:
            probs: FloatArray = mix(linear_p, spacy_p, weight)
            temperature = fit_temperature(probs, y)
            loss = smoothed_nll(apply_temperature(probs, temperature), y, default_smoothing(len(y)))
            accuracy = float(np.mean(probs.argmax(axis=1) == y))
            tried.append(
                {
                    "weight": weight,
                    "svm_weight": svm_weight,
                    "temperature": round(temperature, 4),
                    "nll": round(loss, 4),
                    "accuracy": round(accuracy, 4),
                }
            )
            if best is None or loss < best[0]:
                best = (loss, weight, temperature, svm_weight)
    assert best is not None
    linear.svm_weight = best[3]
    return best[1], best[2], tried


def data_hash(rows: Sequence[tuple[str, str]], seed: int, settings: TrainSettings) -> str:
    digest = hashlib.sha256()
    digest.update(
        json.dumps([seed, asdict(settings), FORMAT_VERSION, MAX_CHARS, PREPROCESS_VERSION]).encode()
    )
    for text, label in rows:
        digest.update(label.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
    return digest.hexdigest()


def _meta(
    version: str,
    labels: Sequence[str],
    weight: float,
    temperature: float,
    n_train: int,
    n_heldout: int,
    settings: TrainSettings,
    svm_weight: float = 0.0,
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "version": version,
        "max_chars": MAX_CHARS,
        "preprocess": PREPROCESS_VERSION,
        "labels": list(labels),
        "spacy_weight": weight,
        "svm_weight": svm_weight,
        "temperature": temperature,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_train": n_train,
        "n_heldout": n_heldout,
        "refit_on_all_rows": settings.refit and n_heldout > 0,
        "settings": asdict(settings),
        "components": {
            "textcat": "spaCy textcat, TextCatBOW.v3 (exclusive, 1-2 grams) on blank 'en'"
            if weight > 0
            else "not used: held-out calibration gave it weight 0",
            "linear": f"LogisticRegression over TF-IDF word {WORD_NGRAMS} + char_wb {CHAR_NGRAMS}"
            + (", mixed with a LinearSVC (softmax over scaled margins)" if svm_weight > 0 else ""),
        },
    }


def _check_rows(rows: Sequence[tuple[str, str]]) -> None:
    if not rows:
        raise LabelledDataError("no training rows")
    counts = Counter(label for _, label in rows)
    if len(counts) < 2:
        raise LabelledDataError(f"training needs at least two labels, found only {set(counts)}")


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LabelledDataError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").exists():
        raise LabelledDataError(
            f"--out {out} is a non-empty directory that is not a model; refusing to replace it"
        )


def write_model(
    out: Path, linear: LinearTextModel, textcat: Any | None, meta: dict[str, Any]
) -> None:
    """Write into a sibling temp dir, then swap it in, so readers never see half a model."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp"
    old = out.parent / f".{out.name}.old"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.mkdir()
    linear.save(tmp)
    if textcat is not None:
        textcat.to_disk(tmp / "textcat")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)


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
