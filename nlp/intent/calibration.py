"""Confidence calibration and the metrics that judge it, in plain numpy.

A classifier's raw top probability is not a confidence a rep can trust: linear models
and bag-of-words networks trained to zero loss on a few hundred emails are routinely
over-confident. Temperature scaling fixes that with one number fitted on held-out
data, keeps the ranking (and so accuracy) unchanged, and is trivial to store in
`meta.json`. The abstain threshold is only meaningful on calibrated probabilities,
which is why this module sits between the model and every threshold decision.

Everything here is a pure function of arrays so it can be tested on synthetic data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = 1e-12
_MIN_T = 0.05
_MAX_T = 20.0


def softmax(logits: FloatArray) -> FloatArray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return out


def probs_to_logits(probs: FloatArray) -> FloatArray:
    """Log-probabilities, clipped so a hard zero does not become -inf."""
    out: FloatArray = np.log(np.clip(probs, _EPS, 1.0))
    return out


def apply_temperature(probs: FloatArray, temperature: float) -> FloatArray:
    """Rescale probabilities by `temperature` (>1 softens, <1 sharpens)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return softmax(probs_to_logits(probs) / temperature)


def nll(probs: FloatArray, labels: IntArray) -> float:
    """Mean negative log-likelihood of the true labels."""
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, _EPS, 1.0))))


def smoothed_nll(probs: FloatArray, labels: IntArray, smoothing: float) -> float:
    """Cross-entropy against targets that give `smoothing` mass to the other classes."""
    n, k = probs.shape
    if n == 0:
        return 0.0
    logp = np.log(np.clip(probs, _EPS, 1.0))
    true = logp[np.arange(n), labels]
    if k == 1 or smoothing <= 0:
        return float(-np.mean(true))
    rest = (logp.sum(axis=1) - true) / (k - 1)
    return float(-np.mean((1.0 - smoothing) * true + smoothing * rest))


def default_smoothing(n: int) -> float:
    """Laplace-style smoothing: a perfect small held-out set must not imply certainty."""
    return 1.0 / (n + 2)


def fit_temperature(
    probs: FloatArray, labels: IntArray, *, smoothing: float | None = None
) -> float:
    """The temperature that minimises held-out NLL (golden-section search on log T).

    NLL is convex in 1/T for fixed logits, so a bracketed 1-D search finds the optimum
    without an optimiser dependency. Plain NLL on a held-out set the model gets all
    right drives T towards zero (certainty); smoothing the targets by 1/(n+2) stops
    that while barely moving the optimum on realistic sets. Returns 1.0 for empty input.
    """
    _check(probs, labels)
    if len(labels) == 0:
        return 1.0
    eps = default_smoothing(len(labels)) if smoothing is None else smoothing
    logits = probs_to_logits(probs)

    def loss(log_t: float) -> float:
        return smoothed_nll(softmax(logits / math.exp(log_t)), labels, eps)

    lo, hi = math.log(_MIN_T), math.log(_MAX_T)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(math.exp((lo + hi) / 2))


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float
    accuracy: float


def reliability(
    confidences: FloatArray, correct: npt.NDArray[np.bool_], *, bins: int = 15
) -> list[ReliabilityBin]:
    """Equal-width confidence bins with mean confidence and accuracy per bin."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; confidence 0 falls into the first bin.
    index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        mask = index == i
        count = int(mask.sum())
        conf = float(confidences[mask].mean()) if count else 0.0
        acc = float(correct[mask].mean()) if count else 0.0
        out.append(ReliabilityBin(float(edges[i]), float(edges[i + 1]), count, conf, acc))
    return out


def expected_calibration_error(
    confidences: FloatArray, correct: npt.NDArray[np.bool_], *, bins: int = 15
) -> float:
    """ECE: bin-weighted mean |accuracy - confidence| over equal-width bins."""
    total = len(confidences)
    if total == 0:
        return 0.0
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.confidence)
            for b in reliability(confidences, correct, bins=bins)
        )
    )


def accuracy_at_coverage(
    confidences: FloatArray, correct: npt.NDArray[np.bool_], coverage: float = 0.8
) -> float:
    """Accuracy on the most confident `coverage` share of the items."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    total = len(confidences)
    if total == 0:
        return 0.0
    keep = max(1, math.ceil(total * coverage))
    order = np.argsort(-confidences, kind="stable")[:keep]
    return float(correct[order].mean())


def _check(probs: FloatArray, labels: IntArray) -> None:
    if probs.ndim != 2:
        raise ValueError(f"probs must be 2-D (items x classes), got shape {probs.shape}")
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probability rows but {len(labels)} labels")
