"""The one-line rationale and the evidence JSON stored with every draft.

The rationale names the real evidence (intent and confidence, quoted entity text,
error-line counts per log, the article matched) so a human can check it in seconds;
the evidence JSON keeps spans, log lines, articles and the brief for the ticket view
and the export.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nlp.types import Analysis, DraftProposal, Suggestion


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
        elif finding.warning_lines:
            parts.append(f"{finding.warning_lines} WARN lines in {finding.attachment}")
    if suggestions:
        best = suggestions[0]
        parts.append(f"matched KB '{best.title}' ({best.score:.1f})")
    else:
        parts.append("no KB article matched")
    if needs_triage and not analysis.abstained:
        parts.append("low confidence: no template written")
    return f"{head} — {', '.join(parts)}"


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
                "warning_lines": f.warning_lines,
                "level": f.level,
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
        "language": proposal.language,
        "brief": dict(proposal.brief),
    }
