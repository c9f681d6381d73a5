"""Bulk writing of seeded tickets: one batch of scenarios into five tables at once.

Large queues (100,000 drafts for the benchmark) must be written in seconds, so rows get
explicit ids and go in as multi-row inserts instead of ORM objects; PostgreSQL's id
sequences are then moved past them so later ordinary inserts do not collide.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine
from sqlmodel import col

from storage.db import session_scope
from storage.models import (
    AnalysisRecord,
    Draft,
    DraftState,
    Message,
    MessageState,
    RawMessage,
    Ticket,
)
from storage.seed.scenarios import MODEL_VERSION, log_findings, raw_mail, reply_text

__all__ = ["write_batch"]


def _next_id(session: Any, table: Any) -> int:
    return int(session.execute(select(func.coalesce(func.max(table.id), 0))).scalar_one()) + 1


def write_batch(
    engine: Engine, rows: list[dict[str, Any]], offset: int, stale_every: int, unfilled_every: int
) -> tuple[list[int], list[int]]:
    with session_scope(engine) as session:
        t0, m0, d0 = (_next_id(session, t) for t in (Ticket, Message, Draft))
        a0 = _next_id(session, AnalysisRecord)
        raws, tickets, messages, analyses, drafts = [], [], [], [], []
        for n, sc in enumerate(rows):
            i = offset + n
            tid, mid_pk, did = t0 + n, m0 + n, d0 + n
            mid = f"seed-{i}-{sc['at']:%Y%m%d%H%M}@{sc['sender'].split('@')[1]}"
            raw = raw_mail(mid, sc["sender"], sc["name"], sc["subject"], sc["body"], sc["at"])
            sha = hashlib.sha256(raw).hexdigest()
            findings = log_findings(sc)
            unfilled = bool(unfilled_every) and i % unfilled_every == unfilled_every - 1
            stale = bool(stale_every) and i % stale_every == stale_every - 1
            state = (
                DraftState.STALE
                if stale
                else DraftState.NEEDS_TRIAGE
                if sc["intent"] == "needs_triage"
                else DraftState.DRAFTED
            )
            raws.append({"sha256": sha, "size": len(raw), "data": raw})
            tickets.append(
                {
                    "id": tid,
                    "subject": sc["subject"],
                    "customer_addr": sc["sender"],
                    "customer_name": sc["name"],
                    "mailbox": "support",
                    "status": "open",
                    "created_at": sc["at"],
                    "updated_at": sc["at"],
                    "intent": sc["intent"],
                    "confidence": sc["confidence"],
                    "signature": sc["signature"],
                }
            )
            messages.append(
                {
                    "id": mid_pk,
                    "dedupe_key": f"mid:{mid}",
                    "message_id": mid,
                    "sha256": sha,
                    "size": len(raw),
                    "direction": "inbound",
                    "source": "seed",
                    "mailbox": "support" if i % 5 else "billing",
                    "envelope_from": sc["sender"],
                    "envelope_to": ["support@example.com"],
                    "from_addr": sc["sender"],
                    "from_name": sc["name"],
                    "to_addrs": ["support@example.com"],
                    "subject": sc["subject"],
                    "in_reply_to": None,
                    "references": [],
                    "received_at": sc["at"],
                    "written_at": sc["at"],
                    "state": MessageState.DRAFTED,
                    "attempts": 1,
                    "ticket_id": tid,
                    "thread_signal": "new",
                    "parsed": {
                        "text": sc["body"],
                        "defects": [],
                        "attachments": (
                            [{"name": "server.log", "size": 181_220, "content_type": "text/plain"}]
                            if findings
                            else []
                        ),
                    },
                }
            )
            analyses.append(
                {
                    "id": a0 + n,
                    "message_pk": mid_pk,
                    "model_version": MODEL_VERSION,
                    "intent": sc["intent"],
                    "confidence": sc["confidence"],
                    "abstained": sc["intent"] == "needs_triage",
                    "scores": {sc["intent"]: sc["confidence"]},
                    "entities": sc["entities"],
                    "log_findings": findings,
                    "reply_text": sc["body"],
                    "notes": [],
                    "created_at": sc["at"],
                }
            )
            article_id, title = sc["article"]
            drafts.append(
                {
                    "id": did,
                    "ticket_id": tid,
                    "message_pk": mid_pk,
                    "state": state,
                    "version": 1,
                    "to_addr": sc["sender"],
                    "subject": f"Re: {sc['subject']} [#{tid}]",
                    "body": reply_text(sc, unfilled),
                    "intent": sc["intent"],
                    "confidence": sc["confidence"],
                    "model_version": MODEL_VERSION,
                    "article_id": article_id,
                    "suggestions": [
                        {
                            "article_id": article_id,
                            "title": title,
                            "score": 0.82,
                            "matched_terms": [sc["intent"].split("_")[0]],
                        },
                        {
                            "article_id": "feature-requests",
                            "title": "Feature requests",
                            "score": 0.21,
                            "matched_terms": [],
                        },
                    ],
                    "unfilled": ["account_id"] if unfilled else [],
                    "rationale": f"intent {sc['intent']} at {sc['confidence']:.2f}; "
                    f"KB {article_id} matched",
                    "evidence": {"entities": sc["entities"], "log_findings": findings},
                    "created_at": sc["at"],
                    "updated_at": sc["at"],
                    "updated_by": None,
                    "mail_written_at": sc["at"],  # the ORM would copy it (storage/mail_time)
                }
            )
        _insert(session, RawMessage, raws)
        _insert(session, Ticket, tickets)
        _insert(session, Message, messages)
        _insert(session, AnalysisRecord, analyses)
        _insert(session, Draft, drafts)
        _sync_sequences(session, (Ticket, Message, AnalysisRecord, Draft))
        return [t["id"] for t in tickets], [d["id"] for d in drafts]


def _sync_sequences(session: Any, models: tuple[Any, ...]) -> None:
    """Explicit ids bypass PostgreSQL's sequences; move them past the rows just written."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        table = model.__tablename__
        session.execute(
            sql_text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )


def _insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    if model is RawMessage:
        unique = {r["sha256"]: r for r in rows}
        wanted = select(col(RawMessage.sha256)).where(col(RawMessage.sha256).in_(list(unique)))
        existing = set(session.execute(wanted).scalars())
        rows = [r for s, r in unique.items() if s not in existing]
    if rows:
        session.execute(insert(model), rows)
