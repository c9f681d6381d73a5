"""The one entry point of analysis: `ParsedMessage` in, `Analysis` out.

The steps are small and named, and their order matters: clean the text (escapes,
NULs, length cap) → keep only what the customer newly wrote (quotes and signatures
go, so a follow-up is judged by its own words) → entities from that reply → log
attachments decoded and mined, with entities from their evidence lines → intent from
the subject, the reply and a short digest of the log failures.

Offsets: a body entity indexes into `Analysis.reply_text`; an attachment entity
(`source` = attachment name, or `archive.zip:member` for archive members) indexes into
that finding's evidence lines joined by "\\n" (`nlp.logs.mining.evidence_text`).

Mail with only an HTML part is read through `nlp.text.html_to_text` (blockquotes become
`>` quotes). `analyse_many` runs the same steps for a batch and asks the intent model
once, which is several times cheaper per message than one call each.

Customer data never makes `analyse` raise; each step that had to give up leaves a note.
Only a missing or broken intent model raises (`IntentModelError`), because that is an
operator problem the runner must surface, not something to guess around.
"""

from __future__ import annotations

import re
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from nlp.entities import extract as ent
from nlp.entities.forwarded import forwarded_text
from nlp.language import detect_language
from nlp.logs import mining as logs
from nlp.quotes import strip_reply
from nlp.text import clean_text, html_to_text
from nlp.types import Analysis, Entity, LogFinding, ParsedMessage

QUOTES_VERSION = "quotes-2"
NEEDS_TRIAGE = "needs_triage"
# The intent is decided by the opening of a reply, and the shipped model was trained on
# "subject + body" texts of a few hundred characters; longer input only costs time
# (char n-gram features are linear in length).
MAX_INTENT_CHARS = 1_000
MAX_ENTITIES = 500


class _Prediction(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def scores(self) -> dict[str, float]: ...
    @property
    def abstained(self) -> bool: ...


class _IntentModel(Protocol):
    version: str

    def predict(self, text: str, *, threshold: float) -> Any: ...

    def predict_many(self, texts: list[str], *, threshold: float) -> Any: ...


@dataclass(frozen=True)
class AnalyzerSettings:
    model_dir: str = ""
    abstain_threshold: float = 0.5
    products: tuple[str, ...] = ()
    account_id_patterns: tuple[str, ...] = ()
    max_log_bytes: int = 20 * 1024 * 1024
    max_compression_ratio: int = 100


class Analyzer:
    """Reusable and thread-safe; loads the intent model on first use unless given one."""

    def __init__(
        self, settings: AnalyzerSettings | None = None, *, intent_model: object | None = None
    ) -> None:
        self.settings = settings or AnalyzerSettings()
        self._entity_settings = ent.EntitySettings(
            products=tuple(self.settings.products),
            account_id_patterns=tuple(self.settings.account_id_patterns),
        )
        # Build the extractor now: a bad operator pattern should fail at start-up.
        self._extractor = ent.get_extractor(self._entity_settings)
        self._log_settings = logs.LogSettings(
            max_log_bytes=self.settings.max_log_bytes,
            max_compression_ratio=self.settings.max_compression_ratio,
        )
        self._model: Any = intent_model
        self._lock = threading.Lock()

    @property
    def intent_model(self) -> _IntentModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from nlp.intent.model import IntentModel

                    self._model = IntentModel.load(self.settings.model_dir or None)
        model: _IntentModel = self._model
        return model

    @property
    def model_version(self) -> str:
        rules = f"{ent.RULES_VERSION}+{logs.RULES_VERSION}+{QUOTES_VERSION}"
        return f"{self.intent_model.version}+{rules}"

    def analyse(self, parsed: ParsedMessage) -> Analysis:
        return self.analyse_many([parsed])[0]

    def analyse_many(self, messages: Sequence[ParsedMessage]) -> list[Analysis]:
        """Analyse several messages; the intent model sees them as one batch (faster)."""
        prepared = [self._prepare(parsed) for parsed in messages]
        predictions = self._intents([p.intent_text for p in prepared], [p.notes for p in prepared])
        version = self.model_version
        return [p.finish(version, pred) for p, pred in zip(prepared, predictions, strict=True)]

    def _prepare(self, parsed: ParsedMessage) -> _Prepared:
        """Every step except intent: clean, strip, entities, logs."""
        notes: list[str] = []
        text = parsed.text or ""
        if not text.strip() and parsed.html:
            text = _step(notes, "HTML conversion", "", html_to_text, parsed.html)
            notes.append("no plain-text part; text taken from the HTML part")
        body = clean_text(text)
        notes.extend(body.notes)
        reply = _step(notes, "reply stripping", body.text, _reply, body.text, parsed.from_name)
        found = self._entities(reply, "body", notes)
        # A forward is cut from the reply as a quote, yet its facts are the customer's:
        # entities from it carry the source "forwarded" (offsets into that block).
        forwarded = _step(notes, "forward reading", "", forwarded_text, body.text)
        if forwarded:
            found.extend(self._entities(forwarded, "forwarded", notes))
        findings: list[LogFinding] = _step(notes, "log analysis", [], self._logs, parsed)
        for finding in findings:
            if finding.evidence:
                found.extend(self._entities(logs.evidence_text(finding), finding.attachment, notes))
        subject = clean_text(parsed.subject or "", max_chars=1000).text
        # "SSL error connecting to auth.example.com" often names what the body does not.
        found.extend(self._entities(subject, "subject", notes))
        return _Prepared(
            reply=reply,
            entities=tuple(ent.dedupe(found)[:MAX_ENTITIES]),
            findings=tuple(findings),
            intent_text=_intent_text(subject, reply, findings),
            notes=notes,
        )

    def _entities(self, text: str, source: str, notes: list[str]) -> list[Entity]:
        found: list[Entity] = _step(
            notes, "entity extraction", [], self._extractor.extract, text, source
        )
        return found

    def _logs(self, parsed: ParsedMessage) -> list[LogFinding]:
        return logs.analyse_logs(parsed.attachments, self._log_settings)

    def _intents(self, texts: list[str], notes: list[list[str]]) -> list[_Prediction]:
        model = self.intent_model
        threshold = self.settings.abstain_threshold
        if not texts:
            return []
        try:
            batch: list[_Prediction] = list(model.predict_many(texts, threshold=threshold))
            if len(batch) == len(texts):
                return batch
        except Exception:  # one odd text must not cost the others their prediction
            pass
        return [self._intent(text, n) for text, n in zip(texts, notes, strict=True)]

    def _intent(self, text: str, notes: list[str]) -> _Prediction:
        try:
            prediction: _Prediction = self.intent_model.predict(
                text, threshold=self.settings.abstain_threshold
            )
        except Exception as exc:
            notes.append(f"intent model failed on this text ({exc!r}); needs triage"[:300])
            return _Abstain()
        return prediction


@dataclass(frozen=True)
class _Prepared:
    reply: str
    entities: tuple[Entity, ...]
    findings: tuple[LogFinding, ...]
    intent_text: str
    notes: list[str]

    def finish(self, model_version: str, prediction: _Prediction) -> Analysis:
        return Analysis(
            model_version=model_version,
            intent=prediction.label,
            confidence=float(prediction.confidence),
            scores=dict(prediction.scores),
            abstained=bool(prediction.abstained),
            entities=self.entities,
            reply_text=self.reply,
            log_findings=self.findings,
            # "" when the text is too short to tell; the pipeline then uses the ticket's.
            language=detect_language(self.reply, default="")[0],
            notes=tuple(self.notes),
        )


@dataclass(frozen=True)
class _Abstain:
    label: str = NEEDS_TRIAGE
    confidence: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    abstained: bool = True


def _step(notes: list[str], name: str, fallback: Any, func: Any, *args: Any) -> Any:
    """Run one step; a failure on odd input leaves a note and the fallback value."""
    try:
        return func(*args)
    except Exception as exc:
        notes.append(f"{name} failed ({exc!r})"[:300])
        return fallback


def _reply(text: str, sender_name: str) -> str:
    return strip_reply(text, sender_name=sender_name)


_MASK = re.compile(r"<\*>")


def _intent_text(subject: str, reply: str, findings: Sequence[LogFinding]) -> str:
    """Subject, reply and what the logs say failed, in that order of weight."""
    digest = [
        " ".join(_MASK.sub(" ", f.template).split())[:200] for f in findings[:3] if f.template
    ]
    parts = [subject, reply[:MAX_INTENT_CHARS]]
    if digest:
        parts.append("Log errors: " + "; ".join(digest))
    return "\n\n".join(p for p in parts if p)


@lru_cache(maxsize=4)
def _cached(settings: AnalyzerSettings) -> Analyzer:
    return Analyzer(settings)


def analyse(parsed: ParsedMessage, settings: AnalyzerSettings | None = None) -> Analysis:
    """Analyse one message with a process-wide Analyzer for these settings."""
    return _cached(settings or AnalyzerSettings()).analyse(parsed)


class _CallableModule(types.ModuleType):
    """`nlp.analyse` is both this module and the function: importing the module sets the
    package attribute to the module, so calling it must still analyse."""

    def __call__(self, parsed: ParsedMessage, settings: AnalyzerSettings | None = None) -> Analysis:
        return analyse(parsed, settings)


sys.modules[__name__].__class__ = _CallableModule
