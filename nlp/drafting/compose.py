"""Compose a reply draft from the best article's template, with the evidence behind it.

The rule that shapes this module: the machine never invents a fact. A placeholder is
filled only from a value that was extracted from the customer's own mail (an entity with
offsets) or from the ticket itself (name, reference); anything else stays visible in the
draft as `[[name?]]` and is listed in `unfilled`, so the rep sees exactly what to
complete. When the classifier abstained or is unsure, no template body is written at
all: the rep gets the ranked suggestions and a `needs_triage` flag instead of a
confident-looking wrong answer. The one-line rationale names the real evidence (intent
and confidence, quoted entity text, error-line counts per log, the article matched) so
a human can check it in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from nlp.types import Analysis, DraftProposal, Entity, Suggestion

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
# What a template may ask for: the ticket's own facts, and one per entity label.
TICKET_PLACEHOLDERS = frozenset({"customer_name", "ticket_ref"})
ENTITY_PLACEHOLDERS = frozenset(
    label.lower()
    for label in (
        "HOSTNAME", "IP", "URL", "EMAIL", "HTTP_STATUS", "ERROR_CODE", "VERSION",
        "K8S_RESOURCE", "CLOUD_REGION", "ACCOUNT_ID", "CVE", "EXCEPTION", "TIMESTAMP",
        "PRODUCT", "SERVICE",
    )
)  # fmt: skip
KNOWN_PLACEHOLDERS = TICKET_PLACEHOLDERS | ENTITY_PLACEHOLDERS
_SUBJECT_TOKEN = re.compile(r"\[#\d+\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?|wg)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
DEFAULT_MIN_CONFIDENCE = 0.5
# Above this score an article is good enough to write its template into the draft.
DEFAULT_MIN_ARTICLE_SCORE = 2.0


def unfilled_marker(name: str) -> str:
    return f"[[{name}?]]"


def ticket_ref(ticket_id: int | None) -> str:
    return f"#{ticket_id}" if ticket_id is not None else ""


def reply_subject(subject: str, ticket_id: int | None) -> str:
    """`Re: <original> [#id]`, without stacking prefixes or duplicating the token."""
    base = _REPLY_PREFIX.sub("", subject or "").strip()
    base = _SUBJECT_TOKEN.sub("", base).strip() or "(no subject)"
    token = f" [#{ticket_id}]" if ticket_id is not None else ""
    return f"Re: {base}{token}"


def entity_values(entities: Sequence[Entity]) -> dict[str, str]:
    """Placeholder name → first extracted value; body entities win over attachments."""
    values: dict[str, str] = {}
    ordered = sorted(entities, key=lambda e: (e.source != "body", e.start))
    for ent in ordered:
        values.setdefault(ent.label.lower(), ent.text.strip())
    return values


def fill_template(template: str, values: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """Fill `{name}` placeholders; return the text and the names left unfilled."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name, "").strip()
        if value:
            return value
        if name not in missing:
            missing.append(name)
        return unfilled_marker(name)

    return PLACEHOLDER.sub(replace, template), tuple(missing)


def _quote(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return f"'{text[: limit - 1]}…'" if len(text) > limit else f"'{text}'"


def rationale(analysis: Analysis, suggestions: Sequence[Suggestion], *, needs_triage: bool) -> str:
    """One checkable line: intent, confidence, the evidence, the article."""
    head = f"{analysis.intent} {analysis.confidence:.2f}"
    if analysis.abstained:
        # An abstaining model reports "needs_triage" as its intent; its best guess
        # is the top score, which is what a rep wants to see.
        label, score = max(
            analysis.scores.items(),
            key=lambda kv: kv[1],
            default=(analysis.intent, analysis.confidence),
        )
        head = f"needs_triage (best guess {label} {score:.2f})"
    parts: list[str] = []
    seen: set[str] = set()
    for ent in analysis.entities:
        if len(parts) >= 3:
            break
        key = ent.text.lower()
        if key in seen:
            continue
        seen.add(key)
        where = "body" if ent.source == "body" else ent.source
        parts.append(f"{_quote(ent.text)} in {where}")
    for finding in analysis.log_findings:
        if finding.error_lines:
            parts.append(f"{finding.error_lines} ERROR lines in {finding.attachment}")
    if suggestions:
        best = suggestions[0]
        parts.append(f"matched KB '{best.title}' ({best.score:.1f})")
    else:
        parts.append("no KB article matched")
    if needs_triage and not analysis.abstained:
        parts.append("low confidence: no template written")
    return f"{head} — {', '.join(parts)}"


def compose(
    analysis: Analysis,
    *,
    customer_name: str,
    ticket_id: int | None,
    subject: str,
    suggestions: Sequence[Suggestion],
    templates: Mapping[str, str],
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_article_score: float = DEFAULT_MIN_ARTICLE_SCORE,
) -> DraftProposal:
    """Build the draft for one ticket.

    `templates` maps article id → reply template (from `nlp.drafting.kb.Article.reply`).
    """
    best = suggestions[0] if suggestions else None
    template = templates.get(best.article_id, "") if best else ""
    confident = not analysis.abstained and analysis.confidence >= min_confidence
    usable = best is not None and best.score >= min_article_score and bool(template.strip())
    needs_triage = not (confident and usable)
    values = entity_values(analysis.entities)
    values["customer_name"] = customer_name.strip()
    values["ticket_ref"] = ticket_ref(ticket_id)
    body, unfilled = ("", ()) if needs_triage else fill_template(template, values)
    return DraftProposal(
        subject=reply_subject(subject, ticket_id),
        body=body,
        needs_triage=needs_triage,
        rationale=rationale(analysis, suggestions, needs_triage=needs_triage),
        suggestions=tuple(suggestions),
        unfilled=unfilled,
        article_id=best.article_id if best and not needs_triage else None,
    )


def evidence(analysis: Analysis, proposal: DraftProposal) -> dict[str, Any]:
    """The JSON stored with a draft: spans, log lines and articles a rep can check."""
    return {
        "intent": analysis.intent,
        "confidence": analysis.confidence,
        "model_version": analysis.model_version,
        "entities": [
            {"label": e.label, "text": e.text, "start": e.start, "end": e.end, "source": e.source}
            for e in analysis.entities
        ],
        "logs": [
            {
                "attachment": f.attachment,
                "error_lines": f.error_lines,
                "total_lines": f.total_lines,
                "signature": f.signature,
                "lines": [{"line_no": ln.line_no, "text": ln.text} for ln in f.evidence],
            }
            for f in analysis.log_findings
        ],
        "articles": [
            {"id": s.article_id, "title": s.title, "score": s.score, "terms": list(s.matched_terms)}
            for s in proposal.suggestions
        ],
        "unfilled": list(proposal.unfilled),
    }
