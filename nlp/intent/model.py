"""Intent classification with calibrated confidence and abstention.

The model is a small ensemble, stored as one self-describing directory:

* a spaCy `textcat` (exclusive classes, bag-of-words n-grams) on `spacy.blank("en")`;
* a linear model (logistic regression) over TF-IDF word 1-2 grams and character 2-5
  grams, which copes with typos, pasted log lines and the non-English minority of
  support mail far better than word features alone on a few hundred examples;
  optionally mixed with a linear SVM over the same features (a different loss makes
  different mistakes), its margins turned into probabilities by a fitted scale.

Their probabilities are mixed with weights and then temperature-scaled; all those
numbers were fitted on held-out data at training time and live in `meta.json` (the SVM
scale and weight also beside its arrays). The linear part is stored as plain arrays
and a vocabulary (never a pickle), so a model trained with one scikit-learn version
loads with another and nothing executable is loaded from disk. `predict` abstains as
`needs_triage` when the calibrated top probability is below the caller's threshold,
but still returns every score as evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from nlp.intent.calibration import FloatArray, apply_temperature

NEEDS_TRIAGE = "needs_triage"
FORMAT_VERSION = 1
# Text preprocessing: 1 = head + digit collapsing; 2 = also drops markup (code fences,
# HTML comments, URLs, markdown rules/headers) before taking the head. Models record
# theirs in meta.json ("preprocess", absent = 1) and predict with it.
PREPROCESS_VERSION = 2
DEFAULT_MODEL_DIR = Path(__file__).parents[1] / "data" / "intent_model"
# Support mail can carry whole log dumps; the head decides the intent (1,500 chars
# scored as well as 4,000 on long GitHub issues and predicts ~2x faster).
MAX_CHARS = 1500
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
_DIGITS = re.compile(r"\d+")
# Each pattern is linear-time: lazy spans end at the closing token or at the end of the
# text, so an unclosed fence or comment cannot make the scan quadratic.
_MARKUP = (
    (re.compile(r"<!--.*?(?:-->|\Z)", re.S), " "),
    (re.compile(r"```.*?(?:```|\Z)", re.S), " codeblock "),
    (re.compile(r"https?://\S+"), " url "),
    (re.compile(r"`[^`\n]+`"), " code "),
    (re.compile(r"[#*>`|_\-]{2,}|^#+\s*", re.M), " "),
)
# Markup is stripped from at most this much text (then the head is taken).
_MARKUP_SCAN = 20 * MAX_CHARS


class IntentModelError(RuntimeError):
    """A model directory that is missing, incomplete or corrupt; names the directory."""


def normalise(text: str, max_chars: int = MAX_CHARS, preprocess: int = PREPROCESS_VERSION) -> str:
    """What both models see: the head of the text with digit runs collapsed.

    Ticket numbers, IPs, sizes and versions vary endlessly but rarely decide an
    intent; collapsing them keeps the n-gram vocabularies small and general. From
    preprocess 2 on, code blocks, HTML comments (issue templates), URLs and markdown
    decoration are dropped first, so the head holds the author's words rather than a
    pasted log or template boilerplate.
    """
    if preprocess >= 2:
        text = text[:_MARKUP_SCAN]
        for pattern, replacement in _MARKUP:
            text = pattern.sub(replacement, text)
    return _DIGITS.sub("0", text[:max_chars])


@dataclass(frozen=True, slots=True)
class IntentPrediction:
    label: str
    confidence: float
    scores: dict[str, float]
    abstained: bool


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


class IntentModel:
    """A loaded intent model; thread-safe for prediction once constructed."""

    def __init__(
        self,
        *,
        labels: Sequence[str],
        linear: LinearTextModel,
        textcat: Any | None,
        spacy_weight: float,
        temperature: float,
        version: str,
        meta: dict[str, Any] | None = None,
        directory: Path | None = None,
    ) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        self.linear = linear
        self.textcat = textcat
        self.spacy_weight = spacy_weight if textcat is not None else 0.0
        self.temperature = temperature
        self.version = version
        self.meta: dict[str, Any] = dict(meta or {})
        self.directory = directory
        # A model predicts with the preprocessing it was trained with.
        self.max_chars = int(self.meta.get("max_chars", MAX_CHARS))
        self.preprocess = int(self.meta.get("preprocess", 1 if meta else PREPROCESS_VERSION))

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> IntentModel:
        """Load a model directory; None or "" loads the model shipped with supportgate."""
        directory = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
        try:
            return cls._load(directory)
        except IntentModelError:
            raise
        except Exception as exc:
            raise IntentModelError(
                f"intent model directory {directory} is unreadable or corrupt: {exc}"
            ) from exc

    @classmethod
    def _load(cls, directory: Path) -> IntentModel:
        if not directory.is_dir():
            raise IntentModelError(f"intent model directory {directory} does not exist")
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise IntentModelError(f"intent model directory {directory} has no meta.json")
        meta = json.loads(meta_path.read_text("utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise IntentModelError(
                f"intent model directory {directory}: unsupported format {meta.get('format')!r}"
            )
        labels = [str(label) for label in meta["labels"]]
        linear = LinearTextModel.load(directory)
        if linear.coef.shape[0] != len(labels):
            raise IntentModelError(f"intent model directory {directory}: label count mismatch")
        weight = float(meta["spacy_weight"])
        if not float(meta["temperature"]) > 0 or not 0.0 <= weight <= 1.0:
            raise IntentModelError(
                f"intent model directory {directory}: temperature or weight out of range"
            )
        textcat = _load_textcat(directory / "textcat", labels) if weight > 0 else None
        return cls(
            labels=labels,
            linear=linear,
            textcat=textcat,
            spacy_weight=weight,
            temperature=float(meta["temperature"]),
            version=str(meta["version"]),
            meta=meta,
            directory=directory,
        )

    def component_proba(self, texts: Sequence[str]) -> tuple[FloatArray, FloatArray | None]:
        """Uncalibrated probabilities of the linear part and the textcat (if used)."""
        clean = [normalise(t, self.max_chars, self.preprocess) for t in texts]
        linear = self.linear.proba(clean)
        if self.textcat is None:
            return linear, None
        return linear, textcat_proba(self.textcat, clean, self.labels)

    def raw_proba(self, texts: Sequence[str]) -> FloatArray:
        linear, spacy_p = self.component_proba(texts)
        return mix(linear, spacy_p, self.spacy_weight)

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Calibrated probabilities, one row per text, columns in `labels` order."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        return apply_temperature(self.raw_proba(texts), self.temperature)

    def predict(self, text: str, *, threshold: float) -> IntentPrediction:
        return self.predict_many([text], threshold=threshold)[0]

    def predict_many(self, texts: list[str], *, threshold: float) -> list[IntentPrediction]:
        probs = self.predict_proba(texts)
        return [self._prediction(row, threshold) for row in probs]

    def _prediction(self, row: FloatArray, threshold: float) -> IntentPrediction:
        best = int(np.argmax(row))
        confidence = float(row[best])
        scores = {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}
        abstained = confidence < threshold
        label = NEEDS_TRIAGE if abstained else self.labels[best]
        return IntentPrediction(label, confidence, scores, abstained)


def mix(linear: FloatArray, spacy_p: FloatArray | None, weight: float) -> FloatArray:
    """Weighted mean of the two components' probabilities."""
    if spacy_p is None or weight <= 0:
        return linear
    out: FloatArray = (1.0 - weight) * linear + weight * spacy_p
    return out


def textcat_proba(nlp: Any, texts: Sequence[str], labels: Sequence[str]) -> FloatArray:
    """Run the spaCy pipeline and return its textcat scores in `labels` order.

    The bag-of-words layer hashes exact token text; lower-casing first merges
    "Invoice"/"invoice"/"INVOICE", which measurably helps on a few hundred emails.
    """
    out = np.zeros((len(texts), len(labels)))
    for i, doc in enumerate(nlp.pipe((t.lower() for t in texts), batch_size=256)):
        out[i] = [doc.cats.get(label, 0.0) for label in labels]
    sums = out.sum(axis=1, keepdims=True)
    normalised: FloatArray = out / np.where(sums > 0, sums, 1.0)
    return normalised


def _load_textcat(path: Path, labels: Sequence[str]) -> Any:
    import spacy

    if not path.is_dir():
        raise IntentModelError(f"intent model directory {path.parent} has no textcat/")
    nlp = spacy.load(path)
    pipe: Any = nlp.get_pipe("textcat")
    found = set(pipe.labels)
    if found != set(labels):
        raise IntentModelError(
            f"intent model directory {path.parent}: textcat labels differ from meta.json"
        )
    return nlp
