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
loads with another and nothing executable is loaded from disk (that part's code
lives in `nlp.intent.linear`). `predict` abstains as `needs_triage` when the
calibrated top probability is below the caller's threshold, but still returns every
score as evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.intent.calibration import FloatArray, apply_temperature
from nlp.intent.linear import CHAR_NGRAMS, WORD_NGRAMS, LinearTextModel

# The linear part lives in `nlp.intent.linear`; importers keep reaching it here.
__all__ = [
    "CHAR_NGRAMS",
    "DEFAULT_MODEL_DIR",
    "FORMAT_VERSION",
    "MAX_CHARS",
    "NEEDS_TRIAGE",
    "PREPROCESS_VERSION",
    "WORD_NGRAMS",
    "IntentModel",
    "IntentModelError",
    "IntentPrediction",
    "LinearTextModel",
    "mix",
    "normalise",
    "textcat_proba",
]

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
