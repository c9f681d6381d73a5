"""The co-pilot brief: what a rep reads first on every ticket, body or not.

One plain dict (stored with the draft, shown above it, exported): the asks (one line
each), the facts found (with where they came from), the log finding (the key line and
what it means), the best passages with scores, the facts still missing, risk flags
(security, legal/data request, urgent or upset, not English, a follow-up) and the
decision — which article wrote the body, or why none did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nlp.drafting.articles import Article
from nlp.drafting.choose import Choice
from nlp.drafting.reading import Reading
from nlp.types import Analysis, Entity, LogFinding

if TYPE_CHECKING:
    from nlp.drafting.compose import DraftContext, ThreadContext

MAX_FACTS_PER_LABEL = 4
MAX_LINE_CHARS = 300


@dataclass(frozen=True, slots=True)
class LogLine:
    attachment: str
    line_no: int
    text: str
    level: str
    means: str = ""


def merged_entities(analysis: Analysis, thread: ThreadContext) -> list[Entity]:
    """This mail's entities, then the ticket's earlier ones (source marked `thread…`)."""
    seen = {(e.label, e.text.lower()) for e in analysis.entities}
    merged = list(analysis.entities)
    for ent in thread.entities:
        key = (ent.label, ent.text.lower())
        if key not in seen:
            seen.add(key)
            source = ent.source if ent.source.startswith("thread") else f"thread:{ent.source}"
            merged.append(Entity(ent.label, ent.text, ent.start, ent.end, source))
    return merged


def _findings(analysis: Analysis, thread: ThreadContext) -> list[LogFinding]:
    found = [f for f in (*analysis.log_findings, *thread.findings) if f.evidence]
    # Errors before warnings; this mail's logs before the thread's (stable sort).
    return sorted(found, key=lambda f: f.level != "error")


def pick_log_line(
    analysis: Analysis, thread: ThreadContext, article: Article | None, lang: str
) -> LogLine | None:
    """The line that explains the ticket: one the article can explain, else the first
    evidence line of the most severe finding."""
    findings = _findings(analysis, thread)
    if not findings:
        return None
    if article is not None:
        for finding in findings:
            for line in finding.evidence:
                for pattern in article.log_patterns:
                    if pattern.pattern.search(line.text):
                        means = pattern.means.get(lang, "")
                        return LogLine(
                            finding.attachment,
                            line.line_no,
                            line.text[:MAX_LINE_CHARS],
                            finding.level,
                            means,
                        )
    first = findings[0]
    line = first.evidence[0]
    return LogLine(first.attachment, line.line_no, line.text[:MAX_LINE_CHARS], first.level)


def _facts(entities: Sequence[Entity]) -> dict[str, list[dict[str, str]]]:
    facts: dict[str, list[dict[str, str]]] = {}
    for ent in entities:
        bucket = facts.setdefault(ent.label.lower(), [])
        if len(bucket) < MAX_FACTS_PER_LABEL and all(f["value"] != ent.text for f in bucket):
            bucket.append({"value": ent.text, "source": ent.source})
    return facts


def _flags(analysis: Analysis, reading: Reading, language: str) -> list[str]:
    flags = []
    if reading.kind == "security" or analysis.intent == "security_report":
        flags.append("security: " + (", ".join(reading.security) or analysis.intent))
    if reading.legal or analysis.intent == "data_request":
        flags.append("legal/data request: " + (", ".join(reading.legal) or analysis.intent))
    if reading.urgent:
        flags.append("urgent: " + ", ".join(reading.urgent))
    if reading.angry:
        flags.append("upset: " + ", ".join(reading.angry))
    if language != "en":
        flags.append(f"not English: {language}")
    if reading.followup:
        flags.append("follow-up: " + ", ".join(reading.followup))
    return flags


def build_brief(
    analysis: Analysis,
    ctx: DraftContext,
    reading: Reading,
    choice: Choice,
    entities: Sequence[Entity],
    *,
    decision: str,
) -> dict[str, Any]:
    log = pick_log_line(analysis, ctx.thread, choice.article, choice.language)
    labels = {e.label.lower() for e in entities}
    needs: tuple[str, ...] = ()
    if choice.article is not None:
        needs = choice.article.needs
    elif ctx.suggestions and (top := ctx.articles.get(ctx.suggestions[0].article_id)):
        needs = top.needs
    passages: list[dict[str, Any]] = [
        {"id": s.article_id, "title": s.title, "score": s.score, "kind": "article"}
        for s in ctx.suggestions
    ] + [
        {"id": p.id, "title": p.title, "score": s.score, "kind": "docs", "source": p.path}
        for s, p in ctx.passages
    ]
    passages.sort(key=lambda p: -p["score"])
    return {
        "asks": list(reading.asks),
        "kind": reading.kind,
        "facts": _facts(entities),
        "log": None
        if log is None
        else {
            "attachment": log.attachment,
            "line_no": log.line_no,
            "text": log.text,
            "level": log.level,
            "means": log.means,
        },
        "passages": passages[:6],
        "missing": [f for f in needs if f not in labels],
        "flags": _flags(analysis, reading, choice.language),
        "urgent": bool(reading.urgent or reading.angry),
        "language": choice.language,
        "intent": choice.intent or analysis.intent,
        "article": choice.article.id if choice.article else None,
        "variant": choice.variant.kind if choice.variant else None,
        "decision": decision,
    }
