"""One ticket as the rep reads it: the draft, the conversation, evidence and suggestions.

The conversation is the whole thread in time order: the customer's mail and our own
released replies (outbox rows) with their delivery state, so a rep sees what the
customer was already told. Read-only; the text and placeholder helpers here are also
what edits and release check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from storage.models import AnalysisRecord, Draft, LabelCorrection, Message, Outbox, Ticket
from storage.review.types import ConversationItem, ReviewError, TicketView

# ---------------------------------------------------------------- ticket view


def load_ticket(*, session: Session, draft_id: int) -> TicketView:
    """The draft, its ticket, the whole conversation and the evidence."""
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise ReviewError(f"draft {draft_id} does not exist")
    ticket = session.get(Ticket, draft.ticket_id)
    message = session.get(Message, draft.message_pk)
    if ticket is None or message is None:
        raise ReviewError(f"draft {draft_id} has lost its ticket or message")
    thread = session.exec(
        select(Message)
        .where(col(Message.ticket_id) == ticket.id)
        .order_by(col(Message.written_at), col(Message.id))
    ).all()
    if message not in thread:
        thread = [*thread, message]
    analysis = session.exec(
        select(AnalysisRecord)
        .where(col(AnalysisRecord.message_pk) == message.id)
        .order_by(col(AnalysisRecord.id).desc())
    ).first()
    evidence = draft.evidence or {}
    entities = evidence.get("entities") or (analysis.entities if analysis else [])
    findings = evidence.get("log_findings") or evidence.get("logs")
    findings = findings or (analysis.log_findings if analysis else [])
    replies = session.exec(
        select(Outbox).where(col(Outbox.ticket_id) == ticket.id).order_by(col(Outbox.id))
    ).all()
    items = [_conversation_item(m) for m in thread] + [_reply_item(o) for o in replies]
    items.sort(key=lambda item: item.received_at)
    correction = session.exec(
        select(LabelCorrection)
        .where(col(LabelCorrection.message_pk) == message.id)
        .order_by(col(LabelCorrection.id).desc())
    ).first()
    set_by = correction.actor if correction and correction.new_label == draft.intent else None
    return TicketView(
        draft=draft,
        ticket=ticket,
        message=message,
        conversation=tuple(items),
        body_text=_text_of(message),
        entities=tuple(entities),
        log_findings=tuple(_finding(f) for f in findings),
        suggestions=tuple(suggestions_of(draft)),
        label_set_by=set_by,
    )


def _finding(raw: dict[str, Any]) -> dict[str, Any]:
    """One log finding in one shape, whether stored by the analysis or the drafter."""
    lines = raw.get("evidence") or raw.get("lines") or []
    return {
        "attachment": str(raw.get("attachment", "")),
        "signature": str(raw.get("signature", "")),
        "template": str(raw.get("template", "")),
        "error_lines": int(raw.get("error_lines", 0) or 0),
        "total_lines": int(raw.get("total_lines", 0) or 0),
        "lines": [
            {"line_no": int(ln.get("line_no", 0)), "text": str(ln.get("text", ""))} for ln in lines
        ],
    }


def suggestions_of(draft: Draft) -> list[dict[str, Any]]:
    """KB suggestions as {article_id, title, score, matched_terms}, from either store."""
    raw = draft.suggestions or (draft.evidence or {}).get("articles") or []
    return [
        {
            "article_id": str(s.get("article_id") or s.get("id") or ""),
            "title": str(s.get("title", "")),
            "score": float(s.get("score", 0.0) or 0.0),
            "matched_terms": list(s.get("matched_terms") or s.get("terms") or []),
        }
        for s in raw
    ]


def _text_of(message: Message) -> str:
    return str((message.parsed or {}).get("text") or "")


def _conversation_item(message: Message) -> ConversationItem:
    parsed = message.parsed or {}
    return ConversationItem(
        message_pk=int(message.id or 0),
        direction=message.direction,
        # The customer's own time: an imported history reads in the order it was written.
        received_at=message.written_at or message.received_at,
        sender=message.from_addr or message.envelope_from or "",
        subject=message.subject or "",
        text=_text_of(message),
        attachments=tuple(parsed.get("attachments") or ()),
        state=message.state,
    )


def _reply_item(row: Outbox) -> ConversationItem:
    """One of our released replies, placed in the thread when it was released."""
    return ConversationItem(
        message_pk=0,
        direction="outbound",
        received_at=row.released_at,
        sender=", ".join(row.to_addrs),
        subject=row.subject,
        text=row.body,
        attachments=(),
        state=row.state,
        ours=True,
        released_by=row.released_by,
        sent_at=row.sent_at,
    )


def draft_placeholders(body: str, names: Iterable[str]) -> list[str]:
    """Which of `names` still stand in `body` as a placeholder ([[x?]], {x}, [x], <x>)."""
    left = []
    for name in names:
        token = re.escape(name.strip("{}[]<> "))
        if re.search(r"[\{\[<]{1,2}\s*" + token + r"\??\s*[\}\]>]{1,2}", body):
            left.append(name)
    return left
