"""Temperature scaling and calibration metrics on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.intent.calibration import (
    accuracy_at_coverage,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability,
    softmax,
)


def _synthetic(sharpen: float, n: int = 3000, k: int = 5, seed: int = 0):
    """Labels drawn from softmax(logits); the model reports softmax(logits * sharpen)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, k))
    true_p = softmax(logits)
    labels = np.array([rng.choice(k, p=row) for row in true_p])
    return softmax(logits * sharpen), labels


def _ece(probs: np.ndarray, labels: np.ndarray) -> float:
    return expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels)


def test_temperature_undoes_over_confidence_and_reduces_ece() -> None:
    probs, labels = _synthetic(sharpen=3.0)
    temperature = fit_temperature(probs, labels)
    assert 2.5 < temperature < 3.5
    calibrated = apply_temperature(probs, temperature)
    before, after = _ece(probs, labels), _ece(calibrated, labels)
    assert before > 0.15
    assert after < before / 3
    # Scaling never changes which class wins.
    assert np.array_equal(calibrated.argmax(axis=1), probs.argmax(axis=1))


def test_under_confident_model_gets_sharpened() -> None:
    probs, labels = _synthetic(sharpen=0.4)
    temperature = fit_temperature(probs, labels)
    assert temperature < 0.6
    assert _ece(apply_temperature(probs, temperature), labels) < _ece(probs, labels)


def test_a_perfect_small_heldout_set_does_not_imply_certainty() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.6, 0.3, 0.1]])
    labels = np.array([0, 1, 2, 0])
    calibrated = apply_temperature(probs, fit_temperature(probs, labels))
    assert calibrated.max() < 0.95


def test_ece_and_reliability_on_hand_computed_values() -> None:
    conf = np.array([0.9] * 10 + [0.3] * 10)
    correct = np.array([True] * 5 + [False] * 5 + [True] * 3 + [False] * 7)
    # |0.5 - 0.9| * 0.5 + |0.3 - 0.3| * 0.5
    assert expected_calibration_error(conf, correct, bins=10) == pytest.approx(0.2)
    bins = reliability(conf, correct, bins=10)
    assert [b.count for b in bins if b.count] == [10, 10]
    assert sum(b.count for b in bins) == 20


def test_accuracy_at_coverage_keeps_the_most_confident_share() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.85, 0.2])
    correct = np.array([True, True, True, True, False])
    assert accuracy_at_coverage(conf, correct, 0.8) == 1.0
    assert accuracy_at_coverage(conf, correct, 1.0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="coverage"):
        accuracy_at_coverage(conf, correct, 0.0)


def test_bad_input_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        apply_temperature(np.array([[0.5, 0.5]]), 0.0)
    with pytest.raises(ValueError, match="2 probability rows but 3 labels"):
        fit_temperature(np.full((2, 2), 0.5), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="2-D"):
        fit_temperature(np.array([0.5, 0.5]), np.array([0, 1]))
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
