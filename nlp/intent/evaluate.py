"""Evaluate an intent model the way reps experience it.

Plain accuracy is not enough for a triage queue: what matters is whether the
confidence can be trusted (ECE), how good the model is on the share of mail it is
most sure about (accuracy at 80% coverage), and, when a team labels some mail as
out of scope, how much of it the model hands to a human instead of guessing. Rows
whose label the model does not know (other than the out-of-scope label) count as
errors, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nlp.intent.calibration import accuracy_at_coverage, expected_calibration_error
from nlp.intent.model import IntentModel

ECE_BINS = 15


@dataclass(frozen=True)
class LabelMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    model_version: str
    threshold: float
    n: int
    accuracy: float
    macro_f1: float
    ece: float
    ece_uncalibrated: float
    accuracy_at_80: float
    coverage: float
    accuracy_when_answered: float
    per_label: dict[str, LabelMetrics] = field(default_factory=dict)
    n_oos: int = 0
    oos_recall: float | None = None
    in_scope_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# Names teams use for "none of the above" rows in labelled data.
OOS_NAMES = frozenset({"oos", "out_of_scope", "out-of-scope", "outofscope", "other", "none"})


def guess_oos_label(model_labels: Sequence[str], gold_labels: Iterable[str]) -> str | None:
    """The data's out-of-scope label: one the model does not know, by a common name."""
    known = set(model_labels)
    for label in sorted(set(gold_labels)):
        if label not in known and label.strip().lower() in OOS_NAMES:
            return label
    return None


def evaluate(
    model: IntentModel,
    rows: Sequence[tuple[str, str]],
    *,
    threshold: float,
    oos_label: str | None = None,
) -> EvalReport:
    """Score `model` on (text, label) rows; `oos_label` rows should be abstained on."""
    if not rows:
        raise ValueError("no rows to evaluate")
    texts = [text for text, _ in rows]
    gold = np.array([label for _, label in rows], dtype=object)
    raw = model.raw_proba(texts)
    probs = model.predict_proba(texts)
    labels = np.array(model.labels, dtype=object)
    predicted = labels[probs.argmax(axis=1)]
    confidence = probs.max(axis=1)
    answered = confidence >= threshold
    oos = gold == oos_label if oos_label is not None else np.zeros(len(rows), dtype=bool)
    ins = ~oos
    correct = predicted == gold
    report = EvalReport(
        model_version=model.version,
        threshold=threshold,
        n=len(rows),
        accuracy=_mean(correct[ins]),
        macro_f1=_macro_f1(gold[ins], predicted[ins]),
        ece=expected_calibration_error(confidence[ins], correct[ins], bins=ECE_BINS),
        ece_uncalibrated=expected_calibration_error(
            raw.max(axis=1)[ins], correct[ins], bins=ECE_BINS
        ),
        accuracy_at_80=accuracy_at_coverage(confidence[ins], correct[ins], 0.8)
        if ins.any()
        else 0.0,
        coverage=_mean(answered[ins]),
        accuracy_when_answered=_mean(correct[ins & answered]),
        per_label=per_label_metrics(gold[ins], predicted[ins]),
        n_oos=int(oos.sum()),
        oos_recall=_mean(~answered[oos]) if oos.any() else None,
        in_scope_accuracy=_mean((correct & answered)[ins]) if oos_label is not None else None,
    )
    return report


def per_label_metrics(gold: np.ndarray, predicted: np.ndarray) -> dict[str, LabelMetrics]:
    """Precision, recall, F1 and support for every gold label."""
    out: dict[str, LabelMetrics] = {}
    for label in sorted(set(gold.tolist())):
        tp = int(np.sum((gold == label) & (predicted == label)))
        fp = int(np.sum((gold != label) & (predicted == label)))
        fn = int(np.sum((gold == label) & (predicted != label)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = LabelMetrics(round(precision, 4), round(recall, 4), round(f1, 4), tp + fn)
    return out


def _macro_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    metrics = per_label_metrics(gold, predicted)
    return float(np.mean([m.f1 for m in metrics.values()])) if metrics else 0.0


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def summarise(report: EvalReport) -> dict[str, Any]:
    """The headline numbers of a report, rounded, for meta.json and logs."""
    keys = (
        "n",
        "accuracy",
        "macro_f1",
        "ece",
        "ece_uncalibrated",
        "accuracy_at_80",
        "coverage",
        "accuracy_when_answered",
        "oos_recall",
        "in_scope_accuracy",
    )
    data = report.to_json()
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items() if k in keys}
