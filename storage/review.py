"""Review operations: the queue as reps see it and every act a rep can take on it.

Everything here is a keyword-only function over a Session or an Engine, with no UI in
it, so the terminal app, the CLI and tests share one set of rules. Two reps may look at
the same draft at once, so every write is a compare-and-set on `Draft.version` (and on
the state it expects) inside one transaction together with its audit row: the second
rep gets a clear error, never a silent overwrite or a second outbox row. Release only
ever writes `Outbox` rows; the sender runner is the code that talks to a relay.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, event, func, update
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, create_engine, select

from storage.audit import audit
from storage.db import BUSY_TIMEOUT_MS, make_engine, session_scope
from storage.models import (
    AnalysisRecord,
    Draft,
    DraftState,
    LabelCorrection,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    Ticket,
    utcnow,
)
from storage.queue import requeue

# Draft states a rep can still act on, and the subset a release accepts.
OPEN_STATES: tuple[str, ...] = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)
RELEASABLE_STATES: tuple[str, ...] = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE)
QUEUE_STATES: tuple[str, ...] = (*OPEN_STATES, DraftState.FAILED)
SORT_KEYS: tuple[str, ...] = (
    "age",
    "sender",
    "subject",
    "intent",
    "confidence",
    "signature",
    "state",
)
PATTERN_FIELDS: tuple[str, ...] = ("intent", "signature", "entity", "sender_domain")
MAX_TAGGED = 10_000
_LABEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ReviewError(ValueError):
    """A review act that cannot be done, worded for the rep who tried it."""


class VersionConflict(ReviewError):
    """Someone else saved the draft since it was loaded; carries both texts."""

    def __init__(
        self, *, draft_id: int, mine: str, theirs: str, current_version: int, updated_by: str | None
    ) -> None:
        who = updated_by or "someone else"
        super().__init__(f"draft {draft_id} was changed by {who} (now version {current_version})")
        self.draft_id = draft_id
        self.mine = mine
        self.theirs = theirs
        self.current_version = current_version
        self.updated_by = updated_by


class LeaseHeld(ReviewError):
    """Another rep holds the ticket; they must finish, or it must be taken over."""

    def __init__(self, *, ticket_id: int, holder: str, expires_at: datetime | None) -> None:
        super().__init__(f"ticket {ticket_id} is being worked on by {holder}")
        self.ticket_id = ticket_id
        self.holder = holder
        self.expires_at = expires_at


class ConfirmationMismatch(ReviewError):
    """The typed count does not match the number of messages to release."""


class PermissionDenied(ReviewError):
    """The act needs a role the actor does not have."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue shows; empty fields mean "any"."""

    states: tuple[str, ...] = OPEN_STATES
    intents: tuple[str, ...] = ()
    min_confidence: float | None = None
    max_confidence: float | None = None
    mailbox: str | None = None
    search: str = ""
    sort: str = "age"
    descending: bool = False


@dataclass(frozen=True, slots=True)
class QueueRow:
    draft_id: int
    ticket_id: int
    received_at: datetime
    sender: str
    subject: str  # the customer's
    reply_subject: str  # the draft's
    intent: str | None
    confidence: float | None
    signature: str | None
    state: str
    version: int
    lease_holder: str | None
    lease_expires_at: datetime | None
    mailbox: str | None


@dataclass(frozen=True, slots=True)
class ConversationItem:
    message_pk: int
    direction: str
    received_at: datetime
    sender: str
    subject: str
    text: str
    attachments: tuple[dict[str, Any], ...]
    state: str


@dataclass(frozen=True, slots=True)
class TicketView:
    """Everything the ticket screen shows for one draft, loaded in one go."""

    draft: Draft
    ticket: Ticket
    message: Message
    conversation: tuple[ConversationItem, ...]
    body_text: str
    entities: tuple[dict[str, Any], ...]
    log_findings: tuple[dict[str, Any], ...]
    suggestions: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ProblemRow:
    """A shunted message or a failed/uncertain send, with the reason."""

    kind: str  # "shunted" | "failed" | "uncertain"
    id: int
    at: datetime
    who: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    outbox_ids: tuple[int, ...]
    bulk_id: str | None


@dataclass(frozen=True, slots=True)
class BulkCandidate:
    """One tagged draft as the bulk review lists it, with why it may be excluded."""

    draft_id: int
    ticket_id: int
    to_addr: str
    subject: str
    body: str
    version: int
    problems: tuple[str, ...] = field(default=())

    @property
    def eligible(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- queue queries


def read_engine(url: str) -> Engine:
    """An engine for the review UI's frequent reads.

    The writer engine opens every SQLite transaction with BEGIN IMMEDIATE, which takes
    the write lock even to read. A queue poll every few seconds that counts 100,000
    rows would then stall ingest (and its SMTP 250) each time, so the UI reads inside
    a deferred BEGIN: under WAL that is a snapshot that never takes the lock. One
    snapshot per session matters as much as the lock: a page is read in two steps
    (sorted ids, then their columns) plus counts, and a release committed between the
    steps must not show a draft that is no longer open. PostgreSQL gets the same
    guarantee from a read-only REPEATABLE READ transaction. Writes still go through
    `make_engine`.
    """
    if not url.startswith("sqlite"):
        return make_engine(url).execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        poolclass=NullPool,
    )
    event.listen(engine, "connect", _reader_pragmas)
    event.listen(engine, "begin", _reader_begin)
    return engine


def _reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, deferred
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _reader_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")  # deferred: a WAL read snapshot, no lock


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_ROW_COLUMNS: tuple[Any, ...] = (
    col(Draft.id),
    col(Draft.ticket_id),
    col(Message.received_at),
    col(Draft.to_addr),
    col(Message.from_addr),
    col(Message.subject),
    col(Draft.subject),
    col(Draft.intent),
    col(Draft.confidence),
    col(Ticket.signature),
    col(Draft.state),
    col(Draft.version),
    col(Ticket.lease_holder),
    col(Ticket.lease_expires_at),
    col(Message.mailbox),
)


def _joined(stmt: Any) -> Any:
    return stmt.join(Message, col(Message.id) == col(Draft.message_pk)).join(
        Ticket, col(Ticket.id) == col(Draft.ticket_id)
    )


def _queue_base(flt: QueueFilter) -> Any:
    return _apply_filter(_joined(select(Draft, Message, Ticket)), flt)


def _narrow(stmt: Any, flt: QueueFilter) -> Any:
    """Join only the tables the filter and the sort need; draft-only queries use its indexes."""
    if flt.mailbox or flt.search.strip() or flt.sort in ("age", "subject"):
        stmt = stmt.join(Message, col(Message.id) == col(Draft.message_pk))
    if flt.search.strip() or flt.sort == "signature":
        stmt = stmt.join(Ticket, col(Ticket.id) == col(Draft.ticket_id))
    return stmt


def _apply_filter(stmt: Any, flt: QueueFilter, *, state_index: bool = True) -> Any:
    if flt.states:
        # Skipping the state index lets SQLite walk the sort column's index and stop
        # after one page instead of sorting every open draft.
        state = col(Draft.state) if state_index else col(Draft.state).concat("")
        stmt = stmt.where(state.in_(flt.states))
    if flt.intents:
        stmt = stmt.where(col(Draft.intent).in_(flt.intents))
    if flt.min_confidence is not None:
        stmt = stmt.where(col(Draft.confidence) >= flt.min_confidence)
    if flt.max_confidence is not None:
        stmt = stmt.where(col(Draft.confidence) <= flt.max_confidence)
    if flt.mailbox:
        stmt = stmt.where(col(Message.mailbox) == flt.mailbox)
    if flt.search.strip():
        pattern = f"%{_escape_like(flt.search.strip())}%"
        stmt = stmt.where(
            col(Draft.subject).ilike(pattern, escape="\\")
            | col(Message.subject).ilike(pattern, escape="\\")
            | col(Message.from_addr).ilike(pattern, escape="\\")
            | col(Draft.to_addr).ilike(pattern, escape="\\")
            | col(Ticket.signature).ilike(pattern, escape="\\")
        )
    return stmt


_SORT_COLUMNS: dict[str, Any] = {
    "age": col(Message.received_at),
    "sender": col(Draft.to_addr),
    "subject": col(Message.subject),
    "intent": col(Draft.intent),
    "confidence": col(Draft.confidence),
    "signature": col(Ticket.signature),
    "state": col(Draft.state),
}


def page_queue(
    *, session: Session, flt: QueueFilter = QueueFilter(), offset: int = 0, limit: int = 200
) -> list[QueueRow]:
    """One page of the queue, sorted and filtered in the database."""
    if flt.sort not in _SORT_COLUMNS:
        raise ReviewError(f"cannot sort by {flt.sort!r} (choose from {', '.join(SORT_KEYS)})")
    column = _SORT_COLUMNS[flt.sort]
    order = column.desc() if flt.descending else column.asc()
    tiebreak = col(Draft.id).desc() if flt.descending else col(Draft.id).asc()
    sqlite = session.get_bind().dialect.name == "sqlite"
    by_draft_index = sqlite and flt.sort in ("intent", "confidence")
    # Two steps: sort narrow (ids only, minimal joins), then read the page's columns.
    ids_stmt = (
        _apply_filter(
            _narrow(select(col(Draft.id)).select_from(Draft), flt),
            flt,
            state_index=not by_draft_index,
        )
        .order_by(order, tiebreak)
        .offset(max(0, offset))
        .limit(max(0, limit))
    )
    ids = [int(i) for i in session.exec(ids_stmt).all()]
    if not ids:
        return []
    rows = session.exec(
        _joined(select(*_ROW_COLUMNS).select_from(Draft)).where(col(Draft.id).in_(ids))
    ).all()
    by_id = {int(r[0]): _row(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def _row(r: Any) -> QueueRow:
    (
        did,
        tid,
        at,
        to_addr,
        from_addr,
        subject,
        reply_subject,
        intent,
        conf,
        sig,
        state,
        version,
        holder,
        expires,
        mailbox,
    ) = r
    return QueueRow(
        draft_id=int(did),
        ticket_id=int(tid),
        received_at=at,
        sender=to_addr or from_addr or "",
        subject=subject or reply_subject or "",
        reply_subject=reply_subject or "",
        intent=intent,
        confidence=conf,
        signature=sig,
        state=state,
        version=version,
        lease_holder=holder,
        lease_expires_at=expires,
        mailbox=mailbox,
    )


def count_queue(*, session: Session, flt: QueueFilter = QueueFilter()) -> int:
    """How many drafts match `flt` (the "of N" in "showing 200 of N")."""
    counted = replace(flt, sort="state")  # a count needs no sort column joined
    stmt = _narrow(select(func.count(col(Draft.id))).select_from(Draft), counted)
    return int(session.exec(_apply_filter(stmt, counted)).one())


def tag_by_pattern(
    *, session: Session, field_name: str, value: str, flt: QueueFilter = QueueFilter()
) -> list[int]:
    """Draft ids in the filtered queue whose `field_name` matches `value`.

    intent and signature match exactly; sender_domain matches the address domain;
    entity matches any extracted entity text (case-insensitive), e.g. a hostname.
    """
    value = value.strip()
    if field_name not in PATTERN_FIELDS:
        raise ReviewError(f"cannot tag by {field_name!r} (choose from {', '.join(PATTERN_FIELDS)})")
    if not value:
        raise ReviewError("a pattern needs a value")
    stmt = _queue_base(flt).order_by(col(Draft.id)).limit(MAX_TAGGED)
    if field_name == "intent":
        stmt = stmt.where(col(Draft.intent) == value)
    elif field_name == "signature":
        stmt = stmt.where(col(Ticket.signature) == value)
    elif field_name == "sender_domain":
        domain = value.lstrip("@").lower()
        stmt = stmt.where(col(Draft.to_addr).ilike(f"%@{_escape_like(domain)}", escape="\\"))
    else:
        # JSON is searched as text first so only plausible rows are decoded.
        like = f"%{_escape_like(value)}%"
        stmt = stmt.where(cast(col(Draft.evidence), String).ilike(like, escape="\\"))
    ids: list[int] = []
    for draft, _message, _ticket in session.exec(stmt).all():
        if field_name == "entity" and not _has_entity(draft, value):
            continue
        ids.append(int(draft.id or 0))
    return ids


def _has_entity(draft: Draft, value: str) -> bool:
    wanted = value.casefold()
    entities = (draft.evidence or {}).get("entities") or []
    return any(str(e.get("text", "")).casefold() == wanted for e in entities)


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
        .order_by(col(Message.received_at), col(Message.id))
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
    return TicketView(
        draft=draft,
        ticket=ticket,
        message=message,
        conversation=tuple(_conversation_item(m) for m in thread),
        body_text=_text_of(message),
        entities=tuple(entities),
        log_findings=tuple(_finding(f) for f in findings),
        suggestions=tuple(suggestions_of(draft)),
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
        received_at=message.received_at,
        sender=message.from_addr or message.envelope_from or "",
        subject=message.subject or "",
        text=_text_of(message),
        attachments=tuple(parsed.get("attachments") or ()),
        state=message.state,
    )


def draft_placeholders(body: str, names: Iterable[str]) -> list[str]:
    """Which of `names` still stand in `body` as a placeholder ([[x?]], {x}, [x], <x>)."""
    left = []
    for name in names:
        token = re.escape(name.strip("{}[]<> "))
        if re.search(r"[\{\[<]{1,2}\s*" + token + r"\??\s*[\}\]>]{1,2}", body):
            left.append(name)
    return left


# ---------------------------------------------------------------- edits


def save_draft(
    *,
    session: Session,
    draft_id: int,
    body: str,
    expected_version: int,
    actor: str,
    clear_stale: bool = False,
    unfilled: Sequence[str] | None = None,
) -> int:
    """Save an edited body if nobody else saved since `expected_version`; return the new version.

    Raises VersionConflict carrying both texts when the draft moved on. With
    `clear_stale`, a stale draft the rep has re-read and saved becomes releasable again.
    `unfilled` replaces the placeholder names to track (after a re-draft).
    """
    draft = _open_draft(session, draft_id)
    if draft.version != expected_version:
        raise VersionConflict(
            draft_id=draft_id,
            mine=body,
            theirs=draft.body,
            current_version=draft.version,
            updated_by=draft.updated_by,
        )
    old_state = draft.state
    new_state = DraftState.DRAFTED if clear_stale and old_state == DraftState.STALE else old_state
    still = draft_placeholders(body, draft.unfilled if unfilled is None else unfilled)
    result = session.execute(
        update(Draft)
        .where(col(Draft.id) == draft_id, col(Draft.version) == expected_version)
        .values(
            body=body,
            unfilled=still,
            state=new_state,
            version=expected_version + 1,
            updated_at=utcnow(),
            updated_by=actor,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        fresh = session.get(Draft, draft_id, populate_existing=True)
        raise VersionConflict(
            draft_id=draft_id,
            mine=body,
            theirs=fresh.body if fresh else "",
            current_version=fresh.version if fresh else -1,
            updated_by=fresh.updated_by if fresh else None,
        )
    audit(
        session,
        actor=actor,
        action="draft.saved",
        entity_type="draft",
        entity_id=draft_id,
        details={"version": expected_version + 1, "from_state": old_state, "state": new_state},
    )
    session.expire(draft)
    return expected_version + 1


def _open_draft(session: Session, draft_id: int) -> Draft:
    draft = session.get(Draft, draft_id, populate_existing=True)
    if draft is None:
        raise ReviewError(f"draft {draft_id} does not exist")
    if draft.state not in OPEN_STATES:
        raise ReviewError(f"draft {draft_id} is {draft.state} and can no longer be changed")
    return draft


def choose_article(
    *,
    session: Session,
    draft_id: int,
    article_id: str,
    body: str,
    expected_version: int,
    actor: str,
    unfilled: Sequence[str] = (),
) -> int:
    """Re-draft from another KB article: record the article and the new body."""
    known = {str(s.get("article_id")) for s in suggestions_of(_open_draft(session, draft_id))}
    if article_id not in known:
        raise ReviewError(f"article {article_id!r} is not among this draft's suggestions")
    version = save_draft(
        session=session,
        draft_id=draft_id,
        body=body,
        expected_version=expected_version,
        actor=actor,
        unfilled=unfilled,
    )
    session.execute(update(Draft).where(col(Draft.id) == draft_id).values(article_id=article_id))
    audit(
        session,
        actor=actor,
        action="draft.article_chosen",
        entity_type="draft",
        entity_id=draft_id,
        details={"article_id": article_id},
    )
    return version


def relabel(*, engine: Engine, draft_id: int, new_intent: str, actor: str) -> None:
    """Change a draft's intent and record the correction for retraining."""
    if not _LABEL_RE.match(new_intent):
        raise ReviewError(f"{new_intent!r} is not a valid intent label")
    with session_scope(engine) as session:
        draft = _open_draft(session, draft_id)
        message = session.get(Message, draft.message_pk)
        old = draft.intent
        if old == new_intent:
            return
        session.add(
            LabelCorrection(
                message_pk=draft.message_pk,
                text=_text_of(message) if message else "",
                old_label=old,
                new_label=new_intent,
                actor=actor,
            )
        )
        draft.intent = new_intent
        if draft.state == DraftState.NEEDS_TRIAGE:
            draft.state = DraftState.DRAFTED
        draft.version += 1
        draft.updated_at = utcnow()
        draft.updated_by = actor
        session.add(draft)
        ticket = session.get(Ticket, draft.ticket_id)
        if ticket is not None:
            ticket.intent = new_intent
            session.add(ticket)
        audit(
            session,
            actor=actor,
            action="draft.relabelled",
            entity_type="draft",
            entity_id=draft_id,
            details={"old": old, "new": new_intent},
            model_version=draft.model_version,
        )


def discard(
    *, engine: Engine, draft_id: int, actor: str, expected_version: int | None = None
) -> None:
    """Drop a draft without replying; the customer message stays, marked why."""
    with session_scope(engine) as session:
        draft = _open_draft(session, draft_id)
        if expected_version is not None and draft.version != expected_version:
            raise VersionConflict(
                draft_id=draft_id,
                mine="",
                theirs=draft.body,
                current_version=draft.version,
                updated_by=draft.updated_by,
            )
        _check_lease(session, draft.ticket_id, actor, utcnow())
        _cas_state(session, draft, DraftState.DISCARDED, actor)
        message = session.get(Message, draft.message_pk)
        if message is not None and message.state == MessageState.DRAFTED:
            message.state = MessageState.SUPPRESSED
            message.suppression_reason = f"draft discarded by {actor}"
            session.add(message)
        audit(
            session,
            actor=actor,
            action="draft.discarded",
            entity_type="draft",
            entity_id=draft_id,
            details={"version": draft.version},
        )


def _cas_state(session: Session, draft: Draft, new_state: str, actor: str) -> None:
    result = session.execute(
        update(Draft)
        .where(
            col(Draft.id) == draft.id,
            col(Draft.version) == draft.version,
            col(Draft.state) == draft.state,
        )
        .values(state=new_state, version=draft.version + 1, updated_at=utcnow(), updated_by=actor)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ReviewError(f"draft {draft.id} was changed by someone else; reload it")


# ---------------------------------------------------------------- leases


@dataclass(frozen=True, slots=True)
class Lease:
    ticket_id: int
    holder: str
    expires_at: datetime
    mine: bool


def _live_holder(ticket: Ticket, now: datetime) -> str | None:
    if ticket.lease_holder and ticket.lease_expires_at and ticket.lease_expires_at > now:
        return ticket.lease_holder
    return None


def acquire_lease(
    *, engine: Engine, ticket_id: int, actor: str, minutes: int = 15, now: datetime | None = None
) -> Lease:
    """Mark the ticket as worked on by `actor`, unless someone else holds it.

    Returns the lease in force: `mine` is False when another rep holds it.
    """
    now = now or utcnow()
    with session_scope(engine) as session:
        ticket = _ticket(session, ticket_id)
        holder = _live_holder(ticket, now)
        if holder and holder != actor:
            assert ticket.lease_expires_at is not None
            return Lease(ticket_id, holder, ticket.lease_expires_at, mine=False)
        ticket.lease_holder = actor
        ticket.lease_expires_at = now + timedelta(minutes=minutes)
        session.add(ticket)
        return Lease(ticket_id, actor, ticket.lease_expires_at, mine=True)


def release_lease(*, engine: Engine, ticket_id: int, actor: str) -> bool:
    """Give the ticket back; only the holder's own lease is cleared."""
    with session_scope(engine) as session:
        result = session.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.lease_holder) == actor)
            .values(lease_holder=None, lease_expires_at=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def take_over(
    *, engine: Engine, ticket_id: int, actor: str, minutes: int = 15, now: datetime | None = None
) -> Lease:
    """Explicitly take a ticket another rep holds; audited with the previous holder."""
    now = now or utcnow()
    with session_scope(engine) as session:
        ticket = _ticket(session, ticket_id)
        previous = _live_holder(ticket, now)
        ticket.lease_holder = actor
        ticket.lease_expires_at = now + timedelta(minutes=minutes)
        session.add(ticket)
        audit(
            session,
            actor=actor,
            action="ticket.taken_over",
            entity_type="ticket",
            entity_id=ticket_id,
            details={"previous_holder": previous},
        )
        return Lease(ticket_id, actor, ticket.lease_expires_at, mine=True)


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None:
        raise ReviewError(f"ticket {ticket_id} does not exist")
    return ticket


def _check_lease(session: Session, ticket_id: int, actor: str, now: datetime) -> None:
    ticket = _ticket(session, ticket_id)
    holder = _live_holder(ticket, now)
    if holder and holder != actor:
        raise LeaseHeld(ticket_id=ticket_id, holder=holder, expires_at=ticket.lease_expires_at)


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
        select(Draft).where(col(Draft.id).in_(list(draft_ids))).order_by(col(Draft.id))
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
        )
        for d in rows
    ]


def subject_with_token(subject: str, ticket_id: int) -> str:
    """Ensure the `[#<ticket id>]` token that threads the customer's reply back."""
    token = f"[#{ticket_id}]"
    if token in subject:
        return subject
    base = subject.strip() or "Your support request"
    return f"{base} {token}"


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
    expected_versions: Mapping[int, int] | None = None,
    now: datetime | None = None,
) -> ReleaseResult:
    """Approve drafts and enqueue their replies, all in one transaction, or none.

    Bulk needs `confirm_count` equal to the number of drafts, and the ops role above
    `bulk_ops_threshold`. Any stale, unfilled, leased-by-another or concurrently changed
    draft aborts the whole release with a ReviewError naming it.
    """
    ids = list(dict.fromkeys(int(i) for i in draft_ids))
    if not ids:
        raise ReviewError("nothing to release")
    if not actor.strip():
        raise ReviewError("a release needs a named rep")
    if bulk:
        _check_bulk(ids, actor, confirm_count, set(ops_roles), bulk_ops_threshold)
    elif len(ids) != 1:
        raise ReviewError("release several drafts with bulk=True and a typed confirmation")
    now = now or utcnow()
    bulk_id = uuid.uuid4().hex if bulk else None
    outbox_ids: list[int] = []
    with session_scope(engine) as session:
        for draft_id in ids:
            expected = (expected_versions or {}).get(draft_id)
            row = _release_one(session, draft_id, actor, from_address, bulk_id, expected, now)
            outbox_ids.append(row)
    return ReleaseResult(tuple(outbox_ids), bulk_id)


def _check_bulk(
    ids: list[int], actor: str, confirm_count: int | None, ops: set[str], threshold: int
) -> None:
    if confirm_count != len(ids):
        raise ConfirmationMismatch(
            f"typed {confirm_count if confirm_count is not None else 'nothing'}, "
            f"but {len(ids)} messages are selected: nothing was released"
        )
    if len(ids) > threshold and actor not in ops:
        raise PermissionDenied(
            f"releasing {len(ids)} messages at once (more than {threshold}) needs the ops role"
        )


def _release_one(
    session: Session,
    draft_id: int,
    actor: str,
    from_address: str,
    bulk_id: str | None,
    expected_version: int | None,
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
        details={"recipient": draft.to_addr, "bulk_id": bulk_id, "outbox_id": outbox.id},
        model_version=draft.model_version,
    )
    return int(outbox.id or 0)


# ---------------------------------------------------------------- problems


def list_problems(*, session: Session, limit: int = 200) -> list[ProblemRow]:
    """Shunted messages and failed or uncertain sends, newest first."""
    shunted = session.exec(
        select(Message)
        .where(col(Message.state) == MessageState.SHUNTED)
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
            "shunted",
            int(m.id or 0),
            m.received_at,
            m.from_addr or "",
            m.subject or "",
            m.error or "",
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


def requeue_shunted(*, engine: Engine, message_ids: Sequence[int], actor: str) -> int:
    """Send shunted messages through analysis again; returns how many moved."""
    return requeue(engine, list(message_ids), actor=actor)


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
