"""Choosing how the ensemble's parts are mixed, and how confident it may claim to be.

The held-out rows pick the textcat weight, the SVM weight and scale, and the softmax
temperature together, by the lowest smoothed negative log-likelihood: the confidence a
rep sees next to an intent is then an honest probability, not a raw score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nlp.intent.calibration import (
    FloatArray,
    apply_temperature,
    default_smoothing,
    fit_temperature,
    smoothed_nll,
)
from nlp.intent.fit import SVM_WEIGHTS, WEIGHTS
from nlp.intent.model import LinearTextModel, mix, normalise, textcat_proba

__all__ = ["calibrate"]


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
