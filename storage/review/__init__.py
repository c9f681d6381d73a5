"""Review operations: the queue as reps see it and every act a rep can take on it.

Everything here is a keyword-only function over a Session or an Engine, with no UI in
it, so the terminal app, the CLI and tests share one set of rules. Two reps may look at
the same draft at once, so every write is a compare-and-set on `Draft.version` (and on
the state it expects) inside one transaction together with its audit row: the second
rep gets a clear error, never a silent overwrite or a second outbox row. Release only
ever writes `Outbox` rows; the sender runner is the code that talks to a relay.

This package's `__init__` is the one import point for the API, and most of the code
lives beside it: `types` (states, errors, result rows), `queue` (queue reads and the read
engine), `ticket` (the ticket view), `leases` (who works on a ticket), `edits` (changing
a draft) and `release` (release checks, the problems list). `release` and
`retry_outbox` stay here: they are the only code that makes outbox rows sendable, and
the human-gate scan (`tests/gateway/outbound/test_human_gate.py`) pins that to this file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.models import Draft, DraftState, Message, MessageState, Outbox, OutboxState, utcnow
from storage.review.edits import (
    _cas_state,
    choose_article,
    discard,
    open_drafts,
    relabel,
    save_draft,
    supersede,
)
from storage.review.leases import (
    Lease,
    _check_lease,
    acquire_lease,
    lease_state,
    release_lease,
    renew_lease,
    take_over,
)
from storage.review.queue import (
    count_queue,
    count_views,
    page_queue,
    read_engine,
    tag_by_pattern,
)
from storage.review.release import (
    bulk_candidates,
    check_answered,
    check_window,
    count_problems,
    count_suppressed,
    list_problems,
    release_preview,
    release_problems,
    requeue_shunted,
    subject_with_token,
)
from storage.review.ticket import (
    draft_placeholders,
    load_ticket,
    suggestions_of,
)
from storage.review.types import (
    MAX_TAGGED,
    OPEN_STATES,
    PATTERN_FIELDS,
    QUEUE_STATES,
    RELEASABLE_STATES,
    SORT_KEYS,
    VIEWS,
    AlreadyAnswered,
    BulkCandidate,
    ConfirmationMismatch,
    ConversationItem,
    LeaseHeld,
    PermissionDenied,
    ProblemRow,
    QueueFilter,
    QueueRow,
    ReleaseResult,
    ReviewError,
    TicketView,
    VersionConflict,
)

__all__ = [
    "MAX_TAGGED",
    "OPEN_STATES",
    "PATTERN_FIELDS",
    "QUEUE_STATES",
    "RELEASABLE_STATES",
    "SORT_KEYS",
    "VIEWS",
    "AlreadyAnswered",
    "BulkCandidate",
    "ConfirmationMismatch",
    "ConversationItem",
    "Lease",
    "LeaseHeld",
    "PermissionDenied",
    "ProblemRow",
    "QueueFilter",
    "QueueRow",
    "ReleaseResult",
    "ReviewError",
    "TicketView",
    "VersionConflict",
    "acquire_lease",
    "bulk_candidates",
    "choose_article",
    "count_problems",
    "count_queue",
    "count_suppressed",
    "count_views",
    "discard",
    "draft_placeholders",
    "lease_state",
    "list_problems",
    "load_ticket",
    "open_drafts",
    "page_queue",
    "read_engine",
    "relabel",
    "release",
    "release_lease",
    "release_preview",
    "release_problems",
    "renew_lease",
    "requeue_shunted",
    "retry_outbox",
    "save_draft",
    "subject_with_token",
    "suggestions_of",
    "supersede",
    "tag_by_pattern",
    "take_over",
]


# ---------------------------------------------------------------- release


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().strip(">").lower() or "localhost"


def release(
    *,
    engine: Engine,
    draft_ids: Sequence[int],
    actor: str,
    from_address: str,
    bulk: bool = False,
    confirm_count: int | None = None,
    ops_roles: Iterable[str] = (),
    bulk_ops_threshold: int = 20,
    bulk_window_minutes: int = 60,
    expected_versions: Mapping[int, int] | None = None,
    confirm_answered: bool = False,
    now: datetime | None = None,
) -> ReleaseResult:
    """Approve drafts and enqueue their replies, all in one transaction, or none.

    Bulk needs `confirm_count` equal to the number of drafts, and the ops role once the
    actor's bulk releases in the last `bulk_window_minutes`, these included, exceed
    `bulk_ops_threshold` (so 16 + 14 counts as 30). Any stale, unfilled,
    leased-by-another or concurrently changed draft aborts the whole release with a
    ReviewError naming it; so does a ticket answered after its draft was written
    (`AlreadyAnswered`) unless `confirm_answered` says the rep means a second reply.
    """
    ids = list(dict.fromkeys(int(i) for i in draft_ids))
    if not ids:
        raise ReviewError("nothing to release")
    if not actor.strip():
        raise ReviewError("a release needs a named rep")
    if bulk:
        _check_bulk(ids, confirm_count)
    elif len(ids) != 1:
        raise ReviewError("release several drafts with bulk=True and a typed confirmation")
    now = now or utcnow()
    bulk_id = uuid.uuid4().hex if bulk else None
    outbox_ids: list[int] = []
    with session_scope(engine) as session:
        if bulk and actor not in set(ops_roles):
            window = {"threshold": bulk_ops_threshold, "minutes": bulk_window_minutes}
            check_window(session=session, count=len(ids), actor=actor, now=now, **window)
        for draft_id in ids:
            expected = (expected_versions or {}).get(draft_id)
            row = _release_one(
                session, draft_id, actor, from_address, bulk_id, expected, confirm_answered, now
            )
            outbox_ids.append(row)
    return ReleaseResult(tuple(outbox_ids), bulk_id)


def _check_bulk(ids: list[int], confirm_count: int | None) -> None:
    if confirm_count != len(ids):
        raise ConfirmationMismatch(
            f"typed {confirm_count if confirm_count is not None else 'nothing'}, "
            f"but {len(ids)} messages are selected: nothing was released"
        )


def _release_one(
    session: Session,
    draft_id: int,
    actor: str,
    from_address: str,
    bulk_id: str | None,
    expected_version: int | None,
    confirm_answered: bool,
    now: datetime,
) -> int:
    draft = session.get(Draft, draft_id, populate_existing=True)
    if draft is None:
        raise ReviewError(f"draft {draft_id} does not exist")
    if draft.state == DraftState.APPROVED:
        raise ReviewError(f"draft {draft_id} was already released by {draft.updated_by}")
    if expected_version is not None and draft.version != expected_version:
        raise ReviewError(f"draft {draft_id} changed since you reviewed it; review it again")
    problems = release_problems(draft)
    if problems:
        raise ReviewError(f"draft {draft_id} cannot be released: {'; '.join(problems)}")
    _check_lease(session, draft.ticket_id, actor, now)
    answered = check_answered(session=session, draft=draft, confirmed=confirm_answered)
    message = session.get(Message, draft.message_pk)
    _cas_state(session, draft, DraftState.APPROVED, actor)
    subject = subject_with_token(draft.subject, draft.ticket_id)
    references = list(message.references or []) if message else []
    if message and message.message_id and message.message_id not in references:
        references.append(message.message_id)
    outbox = Outbox(
        draft_id=draft_id,
        ticket_id=draft.ticket_id,
        state=OutboxState.PENDING,
        message_id=f"<sg-{uuid.uuid4().hex}@{_domain(from_address)}>",
        to_addrs=[draft.to_addr],
        subject=subject,
        body=draft.body,
        in_reply_to=message.message_id if message else None,
        references=references,
        released_by=actor,
        released_at=now,
        bulk_id=bulk_id,
    )
    session.add(outbox)
    if message is not None and message.state == MessageState.DRAFTED:
        message.state = MessageState.APPROVED
        session.add(message)
    session.flush()
    audit(
        session,
        actor=actor,
        action="draft.released",
        entity_type="draft",
        entity_id=draft_id,
        details={"recipient": draft.to_addr, "bulk_id": bulk_id, "outbox_id": outbox.id}
        | ({"after_reply": answered.id} if answered else {}),  # a confirmed second reply
        model_version=draft.model_version,
    )
    return int(outbox.id or 0)


# ---------------------------------------------------------------- problems


def retry_outbox(*, engine: Engine, outbox_ids: Sequence[int], actor: str) -> int:
    """Put failed or uncertain sends back to pending; a human decided to try again."""
    count = 0
    with session_scope(engine) as session:
        rows = session.exec(select(Outbox).where(col(Outbox.id).in_(list(outbox_ids)))).all()
        for row in rows:
            if row.state not in (OutboxState.FAILED, OutboxState.UNCERTAIN):
                continue
            old = row.state
            row.state = OutboxState.PENDING
            row.attempts = 0
            row.next_attempt_at = None
            row.claimed_by = None
            row.claimed_at = None
            session.add(row)
            audit(
                session,
                actor=actor,
                action="outbox.retried",
                entity_type="outbox",
                entity_id=row.id,
                details={"from": old, "last_error": (row.last_error or "")[:500]},
            )
            count += 1
    return count
