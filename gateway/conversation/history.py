"""A ticket's history as drafting needs it: the earlier customer mail as analysed
(entities, log findings, new text), the ticket's intent, and our released replies.

Read from the stored analysis rows, so a follow-up never re-runs the models on old
mail; at most the last 20 messages, so a long ticket costs the same as a short one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlmodel import Session, col, select

from nlp.drafting.compose import ThreadContext
from nlp.language import detect_language
from nlp.types import Entity, EvidenceLine, LogFinding
from storage.models import AnalysisRecord, Message, Outbox, OutboxState, Ticket

MAX_THREAD_MESSAGES = 20


def thread_context(session: Session, ticket: Ticket, message_pk: int) -> ThreadContext:
    """The ticket's earlier customer mail (as analysed) and our released replies."""
    rows = session.exec(
        select(AnalysisRecord)
        .join(Message, col(Message.id) == col(AnalysisRecord.message_pk))
        .where(col(Message.ticket_id) == ticket.id, col(Message.id) != message_pk)
        .order_by(col(Message.id).desc())
        .limit(MAX_THREAD_MESSAGES)
    ).all()
    entities: list[Entity] = []
    findings: list[LogFinding] = []
    texts: list[str] = []
    for record in reversed(rows):
        texts.append(record.reply_text or "")
        for e in record.entities or []:
            entities.append(
                Entity(
                    str(e.get("label", "")),
                    str(e.get("text", "")),
                    int(e.get("start", 0)),
                    int(e.get("end", 0)),
                    f"thread:{e.get('source', 'body')}",
                )
            )
        findings.extend(_finding(f) for f in record.log_findings or [])
    replies = session.exec(
        select(Outbox.body)
        .where(col(Outbox.ticket_id) == ticket.id, col(Outbox.state) != OutboxState.FAILED)
        .order_by(col(Outbox.id))
    ).all()
    language = detect_language("\n".join(texts), default="")[0] if texts else ""
    return ThreadContext(
        entities=tuple(entities),
        findings=tuple(findings),
        replies=tuple(r for r in replies if r),
        language=language,
        intent=ticket.intent or "",
        texts=tuple(texts),
        confidence=ticket.confidence or 0.0,
    )


def _finding(data: dict[str, Any]) -> LogFinding:
    known = {f.name for f in dataclasses.fields(LogFinding)}
    values = {k: v for k, v in data.items() if k in known}
    values["evidence"] = tuple(
        EvidenceLine(int(x.get("line_no", 0)), str(x.get("text", "")))
        for x in data.get("evidence", [])
    )
    values["templates"] = tuple(tuple(x) for x in data.get("templates", []))
    return LogFinding(**values)
