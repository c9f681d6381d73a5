"""Intent quality on public data: our trained, calibrated model beside a linear SVM baseline.

Three sets, each trained and tested in this run for both systems:

* BANKING77 — 77 fine-grained support intents: accuracy and macro-F1.
* CLINC150 (`data_full.json`) — 150 intents plus out-of-scope queries: in-scope accuracy
  and out-of-scope recall, where our model says "out of scope" by abstaining. The abstain
  threshold is chosen on the validation split only (the highest out-of-scope recall whose
  validation in-scope accuracy stays above `--min-in-scope`), then applied to test.
* NLBSE'24 issue types — bug / feature / question on real GitHub issues: macro-F1 per
  repository, then the mean, as the competition scores it.

Why this module is long: each set has its own reader and its own published way of
scoring, and keeping the three side by side in one script keeps the printed table in
step with what is computed.

The baseline is TF-IDF (word 1-2 + char 2-5 grams) + LinearSVC trained on all training
rows. Ours is `nlp.intent.train.train_model` exactly as `supportgate train` runs it (a held-out
slice is used for the mixing weights and temperature), plus the per-component accuracies
of the same fit so the value of each ensemble part is visible ("linear" is the logistic
regression mixed with the linear SVM when calibration gave the SVM a weight). Also
reported: training time, batch prediction throughput, ECE before and after calibration.

Run: .venv/bin/python bench/intent_quality.py [--quick] [--sets banking77,clinc150,nlbse]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from nlp.intent.calibration import expected_calibration_error
from nlp.intent.model import IntentModel
from nlp.intent.train import TrainSettings, train_model

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "intents"
Rows = list[tuple[str, str]]
csv.field_size_limit(10**8)

# No vocabulary caps here: these models are thrown away after the run.
BENCH_SETTINGS = TrainSettings(max_word_features=None, max_char_features=None, bow_length=2**16)


# --- systems ---------------------------------------------------------------------------


def fit_baseline(rows: Rows) -> tuple[Callable[[Sequence[str]], np.ndarray], float]:
    started = time.perf_counter()
    union = FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )
    features = union.fit_transform([t for t, _ in rows])
    svc = LinearSVC().fit(features, [label for _, label in rows])

    def predict(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(svc.predict(union.transform(texts)), dtype=object)

    return predict, time.perf_counter() - started


def fit_ours(rows: Rows, workdir: Path, name: str) -> tuple[IntentModel, float, dict[str, Any]]:
    started = time.perf_counter()
    report = train_model(rows, out_dir=workdir / name, progress=False, settings=BENCH_SETTINGS)
    seconds = time.perf_counter() - started
    info = {
        "spacy_weight": report.spacy_weight,
        "svm_weight": report.svm_weight,
        "temperature": round(report.temperature, 3),
    }
    return IntentModel.load(workdir / name), seconds, info


def ours_predict(model: IntentModel, texts: Sequence[str]) -> dict[str, Any]:
    """Calibrated probabilities, each component's top label, and docs/s of the full model."""
    started = time.perf_counter()
    probs = model.predict_proba(texts)
    seconds = time.perf_counter() - started
    labels = np.array(model.labels, dtype=object)
    linear, spacy_p = model.component_proba(texts)
    return {
        "probs": probs,
        "raw": model.raw_proba(texts),
        "pred": labels[probs.argmax(axis=1)],
        "linear_pred": labels[linear.argmax(axis=1)],
        "spacy_pred": labels[spacy_p.argmax(axis=1)] if spacy_p is not None else None,
        "docs_per_s": len(texts) / seconds if seconds else 0.0,
    }


def with_textcat(model: IntentModel, workdir: Path, rows: Rows, name: str) -> IntentModel | None:
    """The same data with the textcat forced in (weight 0.5), when calibration dropped it."""
    if model.spacy_weight > 0:
        return None
    settings = TrainSettings(**{**BENCH_SETTINGS.__dict__, "spacy_weights": (0.5,)})
    train_model(rows, out_dir=workdir / name, progress=False, settings=settings)
    return IntentModel.load(workdir / name)


# --- data ------------------------------------------------------------------------------


def read_csv(path: Path, text: Callable[[dict[str, str]], str], label: str) -> Rows:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(text(r), r[label]) for r in csv.DictReader(handle)]


def subsample(rows: Rows, fraction: float, seed: int = 0) -> Rows:
    if fraction >= 1.0:
        return rows
    by_label: dict[str, Rows] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    rng = random.Random(seed)
    out: Rows = []
    for group in by_label.values():
        out.extend(rng.sample(group, max(2, int(len(group) * fraction))))
    return out


def _acc(pred: np.ndarray, gold: np.ndarray) -> float:
    return round(float(np.mean(pred == gold)), 4)


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return round(float(f1_score(gold, pred, average="macro", zero_division=0)), 4)


def _ece(out: dict[str, Any], gold: np.ndarray, key: str) -> float:
    probs = out[key]
    correct = out["pred"] == gold
    return round(expected_calibration_error(probs.max(axis=1), correct, bins=15), 4)


# --- sets ------------------------------------------------------------------------------


def bench_banking(data: Path, workdir: Path, fraction: float) -> dict[str, Any]:
    folder = data / "banking77"
    train = subsample(read_csv(folder / "train.csv", lambda r: r["text"], "category"), fraction)
    test = read_csv(folder / "test.csv", lambda r: r["text"], "category")
    texts, gold = [t for t, _ in test], np.array([lb for _, lb in test], dtype=object)
    base, base_s = fit_baseline(train)
    model, ours_s, info = fit_ours(train, workdir, "banking77")
    out = ours_predict(model, texts)
    base_pred = base(texts)
    result: dict[str, Any] = {
        "train_rows": len(train),
        "ours": {
            "accuracy": _acc(out["pred"], gold),
            "macro_f1": _f1(out["pred"], gold),
            "linear_only_accuracy": _acc(out["linear_pred"], gold),
            "ece_uncalibrated": _ece(out, gold, "raw"),
            "ece": _ece(out, gold, "probs"),
            "train_s": round(ours_s, 1),
            "docs_per_s": round(out["docs_per_s"]),
            **info,
        },
        "baseline": {
            "accuracy": _acc(base_pred, gold),
            "macro_f1": _f1(base_pred, gold),
            "train_s": round(base_s, 1),
        },
    }
    forced = with_textcat(model, workdir, train, "banking77-textcat")
    if forced is not None:
        forced_out = ours_predict(forced, texts)
        result["ours"]["with_textcat_0.5_accuracy"] = _acc(forced_out["pred"], gold)
        result["ours"]["textcat_only_accuracy"] = _acc(forced_out["spacy_pred"], gold)
    elif out["spacy_pred"] is not None:
        result["ours"]["textcat_only_accuracy"] = _acc(out["spacy_pred"], gold)
    return result


def choose_threshold(
    conf: np.ndarray, correct: np.ndarray, is_oos: np.ndarray, floor: float
) -> float:
    """Highest OOS recall on validation whose in-scope accuracy stays >= floor."""
    best = (0.0, -1.0)
    for threshold in np.round(np.arange(0.0, 1.0, 0.01), 2):
        answered = conf >= threshold
        in_scope_acc = float(np.mean((correct & answered)[~is_oos]))
        oos_recall = float(np.mean(~answered[is_oos]))
        if in_scope_acc >= floor and oos_recall > best[1]:
            best = (float(threshold), oos_recall)
    return best[0]


def bench_clinc(data: Path, workdir: Path, fraction: float, floor: float) -> dict[str, Any]:
    raw = json.loads((data / "clinc150" / "data_full.json").read_text())
    train = subsample([(t, lb) for t, lb in raw["train"]], fraction)
    val = [(t, lb) for t, lb in raw["val"]] + [(t, "oos") for t, _ in raw["oos_val"]]
    test = [(t, lb) for t, lb in raw["test"]] + [(t, "oos") for t, _ in raw["oos_test"]]
    base, base_s = fit_baseline(train + [(t, "oos") for t, _ in raw["oos_train"]])
    model, ours_s, info = fit_ours(train, workdir, "clinc150")

    def score(rows: Rows) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        gold = np.array([lb for _, lb in rows], dtype=object)
        return ours_predict(model, [t for t, _ in rows]), gold, gold == "oos"

    val_out, val_gold, val_oos = score(val)
    threshold = choose_threshold(
        val_out["probs"].max(axis=1), val_out["pred"] == val_gold, val_oos, floor
    )
    out, gold, oos = score(test)
    answered = out["probs"].max(axis=1) >= threshold
    correct = out["pred"] == gold
    base_pred = base([t for t, _ in test])
    return {
        "train_rows": len(train),
        "threshold_from_validation": threshold,
        "min_in_scope_on_validation": floor,
        "ours": {
            "in_scope_accuracy": round(float(np.mean((correct & answered)[~oos])), 4),
            "oos_recall": round(float(np.mean(~answered[oos])), 4),
            "in_scope_accuracy_no_abstain": _acc(out["pred"][~oos], gold[~oos]),
            "linear_only_in_scope_accuracy": _acc(out["linear_pred"][~oos], gold[~oos]),
            "train_s": round(ours_s, 1),
            "docs_per_s": round(out["docs_per_s"]),
            **info,
        },
        "baseline": {
            "in_scope_accuracy": _acc(base_pred[~oos], gold[~oos]),
            "oos_recall": _acc(base_pred[oos], gold[oos]),
            "train_s": round(base_s, 1),
        },
    }


def bench_nlbse(data: Path, workdir: Path, fraction: float) -> dict[str, Any]:
    folder = data / "nlbse24_issue_types"

    def text(r: dict[str, str]) -> str:
        return f"{r['title']}\n\n{r['body']}"

    with (folder / "issues_test.csv").open(encoding="utf-8", newline="") as handle:
        test_records = list(csv.DictReader(handle))
    train = subsample(read_csv(folder / "issues_train.csv", text, "label"), fraction)
    texts = [text(r) for r in test_records]
    gold = np.array([r["label"] for r in test_records], dtype=object)
    repos = np.array([r["repo"] for r in test_records], dtype=object)
    base, base_s = fit_baseline(train)
    model, ours_s, info = fit_ours(train, workdir, "nlbse")
    out = ours_predict(model, texts)
    base_pred = base(texts)

    def per_repo(pred: np.ndarray) -> dict[str, float]:
        return {repo: _f1(pred[repos == repo], gold[repos == repo]) for repo in sorted(set(repos))}

    ours_repo, base_repo, lin_repo = (
        per_repo(out["pred"]),
        per_repo(base_pred),
        per_repo(out["linear_pred"]),
    )
    return {
        "train_rows": len(train),
        "ours": {
            "mean_macro_f1": round(float(np.mean(list(ours_repo.values()))), 4),
            "per_repo": ours_repo,
            "linear_only_mean_macro_f1": round(float(np.mean(list(lin_repo.values()))), 4),
            "ece_uncalibrated": _ece(out, gold, "raw"),
            "ece": _ece(out, gold, "probs"),
            "train_s": round(ours_s, 1),
            "docs_per_s": round(out["docs_per_s"]),
            **info,
        },
        "baseline": {
            "mean_macro_f1": round(float(np.mean(list(base_repo.values()))), 4),
            "per_repo": base_repo,
            "train_s": round(base_s, 1),
        },
    }


# --- report ----------------------------------------------------------------------------

HEADLINES: dict[str, list[tuple[str, float | None]]] = {
    "banking77": [("accuracy", 0.92), ("macro_f1", None)],
    "clinc150": [("in_scope_accuracy", 0.90), ("oos_recall", 0.50)],
    "nlbse": [("mean_macro_f1", 0.80)],
}


def print_table(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name} (train rows {result['train_rows']})")
    print(f"{'metric':<22}{'ours':>8}{'baseline':>10}{'ratio':>8}{'goal':>7}")
    for key, goal in HEADLINES[name]:
        ours, base = result["ours"][key], result["baseline"][key]
        ratio = f"{ours / base:.2f}" if base else "-"
        goal_text = f"{goal:.2f}" if goal is not None else "-"
        print(f"{key:<22}{ours:>8.4f}{base:>10.4f}{ratio:>8}{goal_text:>7}")
    print(f"{'train seconds':<22}{result['ours']['train_s']:>8}{result['baseline']['train_s']:>10}")
    extras = {k: v for k, v in result["ours"].items() if k not in dict(HEADLINES[name])}
    for key, value in extras.items():
        if key not in ("train_s", "per_repo"):
            print(f"  ours {key}: {value}")
    for key in ("threshold_from_validation", "min_in_scope_on_validation"):
        if key in result:
            print(f"  {key}: {result[key]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sets", default="banking77,clinc150,nlbse")
    parser.add_argument("--quick", action="store_true", help="train on 25%% of each set")
    parser.add_argument("--min-in-scope", type=float, default=0.92)
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    args = parser.parse_args(argv)
    fraction = 0.25 if args.quick else 1.0
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="intent-bench-") as tmp:
        workdir = Path(tmp)
        for name in args.sets.split(","):
            if name == "banking77":
                results[name] = bench_banking(args.data, workdir, fraction)
            elif name == "clinc150":
                results[name] = bench_clinc(args.data, workdir, fraction, args.min_in_scope)
            elif name == "nlbse":
                results[name] = bench_nlbse(args.data, workdir, fraction)
            else:
                parser.error(f"unknown set {name!r}")
            print_table(name, results[name])
            sys.stdout.flush()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
