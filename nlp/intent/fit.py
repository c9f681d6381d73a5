"""Fitting the two parts of the intent ensemble: the linear model and spaCy's textcat.

Kept apart from the training entry point so that what is fitted (features, classifiers,
epochs) can be read without the calibration, the model directory or the command line
around it. Heavy libraries (scikit-learn, spaCy) load inside the functions, so importing
the settings stays cheap for a CLI that only declares flags.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp.intent.calibration import FloatArray
from nlp.intent.labelled import LabelledDataError
from nlp.intent.model import CHAR_NGRAMS, WORD_NGRAMS, LinearTextModel, normalise

__all__ = [
    "SVM_WEIGHTS",
    "WEIGHTS",
    "TrainSettings",
    "fit_components",
    "fit_linear",
    "fit_textcat",
    "stratified_split",
    "textcat_epochs",
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


def textcat_epochs(settings: TrainSettings, n_rows: int) -> int:
    """Small sets get more passes; large ones fewer (each pass costs more)."""
    return settings.epochs or max(6, min(15, 80_000 // max(1, n_rows)))


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
