"""Changing a draft before release: save, choose another article, relabel, discard,
and superseding earlier drafts when a newer one answers the ticket.

Each write is a compare-and-set on the draft's version; `_cas_state` is shared with release.
A superseded draft keeps its text (a rep's edits in it are not lost), it is only no
longer sendable: one open reply per ticket, so a customer who writes twice gets one answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.models import (
    AuditLog,
    Draft,
    DraftState,
    LabelCorrection,
    Message,
    MessageState,
    Ticket,
    utcnow,
)
from storage.review.leases import _check_lease
from storage.review.ticket import _text_of, draft_placeholders, suggestions_of
from storage.review.types import OPEN_STATES, ReviewError, VersionConflict

_LABEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Audit actions that put a rep's words into a draft's body.
_TEXT_EDITS = ("draft.saved", "draft.article_chosen")


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


# ---------------------------------------------------------------- superseding


def open_drafts(*, session: Session, ticket_id: int) -> list[tuple[Draft, Message]]:
    """The ticket's drafts a rep can still act on, oldest first, each with its message."""
    rows = session.exec(
        select(Draft, Message)
        .join(Message, col(Message.id) == col(Draft.message_pk))
        .where(col(Draft.ticket_id) == ticket_id, col(Draft.state).in_(OPEN_STATES))
        .order_by(col(Draft.id))
    ).all()
    return [(d, m) for d, m in rows]


def supersede(
    *, session: Session, drafts: Sequence[Draft], by_draft: int, actor: str
) -> list[dict[str, Any]]:
    """Mark `drafts` superseded by draft `by_draft`; their text stays on their rows.

    Each is a compare-and-set, so a draft released meanwhile is left as it is (its
    reply then shows in the ticket, and the newer draft's release asks first). Returns
    the drafts a rep had edited, as {"draft_id", "edited_by", "version"}.
    """
    edited: list[dict[str, Any]] = []
    for draft in drafts:
        if draft.id == by_draft or draft.state not in OPEN_STATES:
            continue
        result = session.execute(
            update(Draft)
            .where(
                col(Draft.id) == draft.id,
                col(Draft.version) == draft.version,
                col(Draft.state) == draft.state,
            )
            .values(
                state=DraftState.SUPERSEDED,
                version=draft.version + 1,
                updated_at=utcnow(),
                updated_by=actor,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        editors = session.exec(
            select(AuditLog.actor)
            .where(
                col(AuditLog.entity_type) == "draft",
                col(AuditLog.entity_id) == draft.id,
                col(AuditLog.action).in_(_TEXT_EDITS),
            )
            .order_by(col(AuditLog.id))
        ).all()
        audit(
            session,
            actor=actor,
            action="draft.superseded",
            entity_type="draft",
            entity_id=draft.id,
            details={"by_draft": by_draft, "from": draft.state, "edited_by": sorted(set(editors))},
        )
        if editors:
            edited.append(
                {"draft_id": draft.id, "edited_by": editors[-1], "version": draft.version + 1}
            )
        session.expire(draft)
    return edited
