"""What a release checks and shows beforehand, and the problems list afterwards.

The release itself and the retry of failed sends stay in storage/review/__init__.py: they are the
only code that makes outbox rows sendable, and the human-gate scan pins them to that file.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.models import Draft, DraftState, Message, MessageState, Outbox, OutboxState
from storage.queue import requeue
from storage.review.ticket import draft_placeholders
from storage.review.types import RELEASABLE_STATES, BulkCandidate, ProblemRow, ReviewError

# ---------------------------------------------------------------- release


def release_problems(draft: Draft) -> list[str]:
    """Why a draft may not be released as it stands (empty when it may)."""
    problems = []
    if draft.state == DraftState.STALE:
        problems.append("stale: the customer wrote again after this draft")
    elif draft.state not in RELEASABLE_STATES:
        problems.append(f"draft is {draft.state}")
    unfilled = draft_placeholders(draft.body, draft.unfilled or [])
    if unfilled:
        problems.append("unfilled placeholders: " + ", ".join(unfilled))
    if not draft.to_addr:
        problems.append("no recipient")
    if not draft.body.strip():
        problems.append("empty body")
    return problems


def bulk_candidates(*, session: Session, draft_ids: Sequence[int]) -> list[BulkCandidate]:
    """The tagged drafts as the bulk review shows them, each with its problems."""
    rows = session.exec(
        select(Draft, Message)
        .join(Message, col(Message.id) == col(Draft.message_pk))
        .where(col(Draft.id).in_(list(draft_ids)))
        .order_by(col(Draft.id))
    ).all()
    return [
        BulkCandidate(
            draft_id=int(d.id or 0),
            ticket_id=d.ticket_id,
            to_addr=d.to_addr,
            subject=subject_with_token(d.subject, d.ticket_id),
            body=d.body,
            version=d.version,
            problems=tuple(release_problems(d)),
            from_addr=m.from_addr or "",
        )
        for d, m in rows
    ]


def release_preview(*, session: Session, draft_id: int) -> BulkCandidate:
    """One draft as a release confirmation shows it, checked first: its problems, if any."""
    found = bulk_candidates(session=session, draft_ids=[draft_id])
    if not found:
        raise ReviewError(f"draft {draft_id} does not exist")
    return found[0]


def subject_with_token(subject: str, ticket_id: int) -> str:
    """Ensure the `[#<ticket id>]` token that threads the customer's reply back."""
    token = f"[#{ticket_id}]"
    if token in subject:
        return subject
    base = subject.strip() or "Your support request"
    return f"{base} {token}"


# ---------------------------------------------------------------- problems


_HELD = (MessageState.SHUNTED, MessageState.SUPPRESSED)


def list_problems(*, session: Session, limit: int = 200) -> list[ProblemRow]:
    """Shunted and suppressed messages and failed or uncertain sends, newest first.

    Suppressed mail (auto-replies, bounces, loops) is listed with its reason so a rep can
    spot a real customer mail that was taken for one, and send it through again.
    """
    shunted = session.exec(
        select(Message)
        .where(col(Message.state).in_(_HELD))
        .order_by(col(Message.received_at).desc())
        .limit(limit)
    ).all()
    failed = session.exec(
        select(Outbox)
        .where(col(Outbox.state).in_((OutboxState.FAILED, OutboxState.UNCERTAIN)))
        .order_by(col(Outbox.released_at).desc())
        .limit(limit)
    ).all()
    rows = [
        ProblemRow(
            m.state,
            int(m.id or 0),
            m.received_at,
            m.from_addr or "",
            m.subject or "",
            (m.suppression_reason if m.state == MessageState.SUPPRESSED else m.error) or "",
        )
        for m in shunted
    ] + [
        ProblemRow(
            o.state,
            int(o.id or 0),
            o.released_at,
            ", ".join(o.to_addrs),
            o.subject,
            o.last_error or "",
        )
        for o in failed
    ]
    return sorted(rows, key=lambda r: r.at, reverse=True)[:limit]


def count_problems(*, session: Session) -> int:
    shunted = session.exec(
        select(func.count(col(Message.id))).where(col(Message.state) == MessageState.SHUNTED)
    ).one()
    failed = session.exec(
        select(func.count(col(Outbox.id))).where(
            col(Outbox.state).in_((OutboxState.FAILED, OutboxState.UNCERTAIN))
        )
    ).one()
    return int(shunted) + int(failed)


def count_suppressed(*, session: Session) -> int:
    """Mail held back as auto-replies, bounces or loops (listed with the problems)."""
    return int(
        session.exec(
            select(func.count(col(Message.id))).where(col(Message.state) == MessageState.SUPPRESSED)
        ).one()
    )


def requeue_shunted(*, engine: Engine, message_ids: Sequence[int], actor: str) -> int:
    """Send shunted or suppressed messages through analysis again; returns how many moved."""
    return requeue(engine, list(message_ids), actor=actor)
