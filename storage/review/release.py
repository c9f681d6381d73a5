"""What a release checks and shows beforehand, and the problems list afterwards.

Two checks look past the draft itself, at what was already released: a ticket answered
after its draft was written (a second reply needs a rep's explicit yes), and how many
replies a rep released in bulk lately, so a limit cannot be split into smaller batches.

The release itself and the retry of failed sends stay in storage/review/__init__.py: they are the
only code that makes outbox rows sendable, and the human-gate scan pins them to that file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.models import Draft, DraftState, Message, MessageState, Outbox, OutboxState
from storage.queue import requeue
from storage.review.ticket import draft_placeholders
from storage.review.types import (
    RELEASABLE_STATES,
    AlreadyAnswered,
    BulkCandidate,
    PermissionDenied,
    ProblemRow,
    ReviewError,
)

# ---------------------------------------------------------------- release


def release_problems(draft: Draft) -> list[str]:
    """Why a draft may not be released as it stands (empty when it may)."""
    problems = []
    if draft.state == DraftState.STALE:
        problems.append("stale: the customer wrote again after this draft")
    elif draft.state == DraftState.SUPERSEDED:
        problems.append("superseded: a newer draft answers this ticket")
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
    replies = _replies(session, {d.ticket_id for d, _ in rows})
    return [
        BulkCandidate(
            draft_id=int(d.id or 0),
            ticket_id=d.ticket_id,
            to_addr=d.to_addr,
            subject=subject_with_token(d.subject, d.ticket_id),
            body=d.body,
            version=d.version,
            problems=tuple(release_problems(d) + _answered_problem(d, replies)),
            from_addr=m.from_addr or "",
        )
        for d, m in rows
    ]


def _replies(session: Session, ticket_ids: set[int]) -> list[Outbox]:
    if not ticket_ids:
        return []
    query = select(Outbox).where(col(Outbox.ticket_id).in_(sorted(ticket_ids)))
    return list(session.exec(query.order_by(col(Outbox.released_at))).all())


def _answered_problem(draft: Draft, replies: Sequence[Outbox]) -> list[str]:
    found = [o for o in replies if o.ticket_id == draft.ticket_id and _answers(o, draft)]
    if not found:
        return []
    last = found[-1]
    at = last.released_at.strftime("%H:%M UTC")
    return [f"answered: {last.released_by} released a reply at {at}, after this draft"]


def _answers(reply: Outbox, draft: Draft) -> bool:
    return reply.draft_id != draft.id and reply.released_at > draft.created_at


def answered_since(*, session: Session, draft: Draft) -> Outbox | None:
    """The newest reply released on the draft's ticket after the draft was written, if any."""
    replies = _replies(session, {draft.ticket_id})
    found = [o for o in replies if _answers(o, draft)]
    return found[-1] if found else None


def check_answered(*, session: Session, draft: Draft, confirmed: bool) -> Outbox | None:
    """The reply that answered the ticket since `draft` was written (None if none);
    raises AlreadyAnswered for one unless the rep `confirmed` a second reply."""
    answered = answered_since(session=session, draft=draft)
    if answered is not None and not confirmed:
        raise AlreadyAnswered(
            draft_id=int(draft.id or 0),
            ticket_id=draft.ticket_id,
            released_by=answered.released_by,
            released_at=answered.released_at,
        )
    return answered


def check_window(
    *, session: Session, count: int, actor: str, threshold: int, minutes: int, now: datetime
) -> None:
    """The ops threshold over a sliding window, so a refused batch cannot go out in parts."""
    earlier = bulk_released_since(
        session=session, actor=actor, since=now - timedelta(minutes=minutes)
    )
    if count > threshold:
        raise PermissionDenied(
            f"releasing {count} messages at once (more than {threshold}) needs the ops role"
        )
    if earlier + count > threshold:
        raise PermissionDenied(
            f"you released {earlier} messages in bulk in the last {minutes} minutes; "
            f"{count} more makes {earlier + count} (more than {threshold}), "
            "which needs the ops role"
        )


def bulk_released_since(*, session: Session, actor: str, since: datetime) -> int:
    """How many replies `actor` released in bulk since `since` (the sliding release window)."""
    return int(
        session.exec(
            select(func.count(col(Outbox.id))).where(
                col(Outbox.released_by) == actor,
                col(Outbox.bulk_id).is_not(None),
                col(Outbox.released_at) > since,
            )
        ).one()
    )


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
