"""The linear part of the intent ensemble: TF-IDF n-grams into linear classifiers.

Logistic regression (optionally mixed with a linear SVM) over sublinear TF-IDF word
1-2 grams and character 2-5 grams. It is stored as plain arrays and a vocabulary, never
a pickle, so a model trained with one scikit-learn version loads with another and
nothing executable is read from disk; features are rebuilt here from those arrays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from nlp.intent.calibration import FloatArray

__all__ = ["CHAR_NGRAMS", "WORD_NGRAMS", "LinearTextModel"]

WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)


@dataclass
class LinearTextModel:
    """Multinomial logistic regression over sublinear TF-IDF word and char n-grams."""

    word_vocab: list[str]
    word_idf: FloatArray
    char_vocab: list[str]
    char_idf: FloatArray
    coef: FloatArray  # labels x (words + chars)
    intercept: FloatArray
    # Optional linear SVM over the same features: probabilities are
    # (1 - svm_weight) * softmax(LR scores) + svm_weight * softmax(svm_scale * margins).
    svm_coef: FloatArray | None = None
    svm_intercept: FloatArray | None = None
    svm_scale: float = 1.0
    svm_weight: float = 0.0
    _word: CountVectorizer = field(init=False, repr=False)
    _char: CountVectorizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._word = CountVectorizer(
            ngram_range=WORD_NGRAMS,
            vocabulary={t: i for i, t in enumerate(self.word_vocab)},
            dtype=np.float64,
        )
        self._char = CountVectorizer(
            analyzer="char_wb",
            ngram_range=CHAR_NGRAMS,
            vocabulary={t: i for i, t in enumerate(self.char_vocab)},
            dtype=np.float64,
        )
        # The vectorizers validate a given vocabulary lazily on first use; do it now so
        # concurrent first predictions never race on that state.
        self._word.transform([""])
        self._char.transform([""])

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        word = _tfidf(self._word.transform(texts), self.word_idf)
        char = _tfidf(self._char.transform(texts), self.char_idf)
        return sp.hstack([word, char], format="csr")

    def proba(self, texts: Sequence[str]) -> FloatArray:
        lr_p, svm_p = self.parts(self.features(texts))
        if svm_p is None or self.svm_weight <= 0:
            return lr_p
        out: FloatArray = (1.0 - self.svm_weight) * lr_p + self.svm_weight * svm_p
        return out

    def parts(self, features: sp.csr_matrix) -> tuple[FloatArray, FloatArray | None]:
        """Logistic-regression probabilities and scaled SVM softmax (None without an SVM)."""
        lr_p = _softmax(np.asarray(features @ self.coef.T + self.intercept, dtype=np.float64))
        if self.svm_coef is None or self.svm_intercept is None:
            return lr_p, None
        margins = np.asarray(features @ self.svm_coef.T + self.svm_intercept, dtype=np.float64)
        return lr_p, _softmax(margins * self.svm_scale)

    def save(self, directory: Path) -> None:
        arrays: dict[str, Any] = {
            "word_idf": self.word_idf.astype(np.float32),
            "char_idf": self.char_idf.astype(np.float32),
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float32),
        }
        if self.svm_coef is not None and self.svm_intercept is not None and self.svm_weight > 0:
            arrays["svm_coef"] = self.svm_coef.astype(np.float32)
            arrays["svm_intercept"] = self.svm_intercept.astype(np.float32)
            arrays["svm_scale_weight"] = np.array([self.svm_scale, self.svm_weight])
        np.savez_compressed(directory / "linear.npz", **arrays)
        vocab = {"word": self.word_vocab, "char": self.char_vocab}
        (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path) -> LinearTextModel:
        with np.load(directory / "linear.npz", allow_pickle=False) as arrays:
            parts = {k: arrays[k].astype(np.float64) for k in arrays.files}
        vocab = json.loads((directory / "vocab.json").read_text("utf-8"))
        scale, weight = parts.get("svm_scale_weight", np.array([1.0, 0.0]))
        model = cls(
            word_vocab=list(vocab["word"]),
            word_idf=parts["word_idf"],
            char_vocab=list(vocab["char"]),
            char_idf=parts["char_idf"],
            coef=parts["coef"],
            intercept=parts["intercept"],
            svm_coef=parts.get("svm_coef"),
            svm_intercept=parts.get("svm_intercept"),
            svm_scale=float(scale),
            svm_weight=float(weight),
        )
        width = len(model.word_vocab) + len(model.char_vocab)
        if model.coef.shape[1] != width or len(model.word_idf) != len(model.word_vocab):
            raise ValueError("linear weights do not match the vocabulary")
        if model.svm_coef is not None and model.svm_coef.shape != model.coef.shape:
            raise ValueError("SVM weights do not match the vocabulary")
        if not 0.0 <= model.svm_weight <= 1.0 or not model.svm_scale > 0:
            raise ValueError("SVM scale or weight out of range")
        return model


def _softmax(scores: FloatArray) -> FloatArray:
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    out: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return out


def _tfidf(counts: sp.csr_matrix, idf: FloatArray) -> sp.csr_matrix:
    counts = counts.tocsr().astype(np.float64)
    counts.data = 1.0 + np.log(counts.data)
    weighted = counts @ sp.diags(idf)
    out: sp.csr_matrix = normalize(weighted, norm="l2", copy=False)
    return out
