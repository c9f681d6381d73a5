"""Deterministic, realistic queue contents for tests, the benchmark and the demo.

The review UI is only as trustworthy as the data it was tried on, so seeded tickets
look like real support mail: hosted-database and Kubernetes customers, log excerpts
with failure signatures, extracted entities with offsets into the body, KB suggestions
with scores, some stale drafts and some with unfilled placeholders. Everything derives
from a seed and a fixed `now`, so two runs produce the same rows (snapshots rely on it).
Large queues are written with bulk inserts in batches so 100,000 drafts take seconds.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    Outbox,
    OutboxState,
    RawMessage,
    Ticket,
)

FIXED_NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
MODEL_VERSION = "intent-seed-1"

_CUSTOMERS = [
    ("Priya Raman", "priya", "acme-analytics.io"),
    ("Jonas Berg", "jonas.berg", "nordlicht.de"),
    ("Mei Chen", "mei", "lanternfish.dev"),
    ("Tomás Ortega", "t.ortega", "ortega-logistics.es"),
    ("Aisha Bello", "aisha", "kanoo.ng"),
    ("Sam Whitfield", "sam", "brightpath.co.uk"),
    ("Olga Petrova", "olga.p", "taiga-systems.ru"),
    ("Lucas Martin", "lucas", "atelier-web.fr"),
]

# intent -> (subject, body with {host} {ip} {code} {region}, KB article, signature or "")
_SCENARIOS: dict[str, tuple[str, str, tuple[str, str], str]] = {
    "outage_report": (
        "Cluster {host} unreachable since this morning",
        "Hi,\n\nour production database {host} ({ip}) stopped accepting connections at "
        "07:12 UTC in {region}. Clients fail with HTTP {code}. The attached log shows the "
        "replica falling over.\n\nThanks",
        ("incident-5xx", "Errors during an incident (HTTP 5xx)"),
        "sig-conn-refused",
    ),
    "performance": (
        "Queries slow on {host}",
        "Hello,\n\nsince yesterday p99 latency on {host} went from 40ms to 900ms. "
        "Nothing changed on our side. Region {region}, error {code} on some calls.\n",
        ("slow-queries-performance", "Slow database queries and high latency"),
        "sig-slow-query",
    ),
    "account_login": (
        "Cannot log in to the console",
        "Hi team,\n\nI get HTTP {code} when I sign in to the console from {ip}. "
        "Password reset mails never arrive.\n\nRegards",
        ("password-reset-mfa", "Password reset and MFA recovery"),
        "",
    ),
    "billing": (
        "Invoice for October looks wrong",
        "Hello,\n\nour October invoice charges for 12 nodes but {host} only ran 4. "
        "Can you check?\n",
        ("billing-questions", "Billing questions, invoices and refunds"),
        "",
    ),
    "quota_limits": (
        "Hit the connection limit on {host}",
        "Hi,\n\nwe keep hitting 'too many connections' ({code}) on {host} in {region}. "
        "How do we raise the limit?\n",
        ("quotas", "Resource quotas and limit increases"),
        "sig-too-many-conn",
    ),
    "config_help": (
        "How to enable TLS for {host}",
        "Hello,\n\nwhat is the right way to require TLS for clients of {host}? "
        "We run version 15.4.\n",
        ("tls-certificate-expiry", "TLS certificate expired or not trusted"),
        "",
    ),
    "bug_report": (
        "Backup job fails with {code}",
        "Hi,\n\nthe nightly backup of {host} fails with error {code}; log attached.\n",
        ("backups-restore", "Backups and point-in-time restore"),
        "sig-backup-timeout",
    ),
    "needs_triage": (
        "Question",
        "hello, something is off with our setup, can someone call me?\n",
        ("api-errors-bug-report", "Unexpected API errors and exceptions"),
        "",
    ),
}

_REGIONS = ["eu-west-1", "us-east-2", "ap-southeast-1", "eu-central-1"]
_CODES = ["502", "503", "504", "429", "401"]


@dataclass(frozen=True, slots=True)
class SeedResult:
    draft_ids: list[int]
    ticket_ids: list[int]
    shunted_message_ids: list[int]
    failed_outbox_ids: list[int]


def _spans(body: str, values: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    spans = []
    for label, text in values.values():
        start = body.find(text)
        if start >= 0:
            spans.append(
                {
                    "label": label,
                    "text": text,
                    "start": start,
                    "end": start + len(text),
                    "source": "body",
                }
            )
    return sorted(spans, key=lambda e: e["start"])


def _raw(mid: str, sender: str, name: str, subject: str, body: str, at: datetime) -> bytes:
    return (
        f"From: {name} <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\nDate: {at:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def _scenario(i: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    intent = list(_SCENARIOS)[i % len(_SCENARIOS)]
    subject_t, body_t, article, signature = _SCENARIOS[intent]
    name, local, domain = _CUSTOMERS[(i * 7 + i // len(_SCENARIOS)) % len(_CUSTOMERS)]
    host = f"db-{rng.choice(['prod', 'stage', 'eu', 'main'])}-{i % 97:02d}.{domain}"
    values = {
        "host": ("HOSTNAME", host),
        "ip": ("IP", f"10.{i % 200}.{(i * 3) % 250}.{(i * 11) % 250}"),
        "code": ("HTTP_STATUS", rng.choice(_CODES)),
        "region": ("CLOUD_REGION", rng.choice(_REGIONS)),
    }
    flat = {k: v[1] for k, v in values.items()}
    body = body_t.format(**flat)
    confidence = 0.31 if intent == "needs_triage" else round(0.55 + rng.random() * 0.44, 2)
    return {
        "intent": intent,
        "subject": subject_t.format(**flat),
        "body": body,
        "entities": _spans(body, values),
        "article": article,
        "signature": signature or None,
        "sender": f"{local}@{domain}",
        "name": name,
        "confidence": confidence,
        "at": now - timedelta(minutes=7 * i + rng.randint(0, 6)),
        "host": host,
    }


def _findings(sc: dict[str, Any]) -> list[dict[str, Any]]:
    if not sc["signature"]:
        return []
    line = f"2026-11-20T07:12:0{len(sc['host']) % 10}Z ERROR {sc['host']}: {sc['signature']}"
    return [
        {
            "attachment": "server.log",
            "total_lines": 2000,
            "error_lines": 14,
            "signature": sc["signature"],
            "template": "<*> ERROR <*>: " + sc["signature"],
            "evidence": [{"line_no": 1412, "text": line}, {"line_no": 1413, "text": line}],
            "templates": [],
            "note": "",
        }
    ]


def _reply(sc: dict[str, Any], unfilled: bool) -> str:
    greeting = sc["name"].split()[0]
    extra = "\nYour account id is [[account_id?]]." if unfilled else ""
    return (
        f"Hello {greeting},\n\nthanks for the report about {sc['host']}. "
        f"{sc['article'][1]} describes the next steps; we are looking at it now.{extra}\n\n"
        "Best regards"
    )


def seed(
    engine: Engine,
    *,
    count: int = 40,
    now: datetime = FIXED_NOW,
    rng_seed: int = 7,
    stale_every: int = 9,
    unfilled_every: int = 11,
    shunted: int = 2,
    failed: int = 1,
    batch: int = 5000,
) -> SeedResult:
    """Write `count` tickets with drafts (+ shunted mail and failed sends); return ids."""
    rng = random.Random(rng_seed)
    draft_ids: list[int] = []
    ticket_ids: list[int] = []
    for start in range(0, count, batch):
        rows = [_scenario(i, rng, now) for i in range(start, min(count, start + batch))]
        t_ids, d_ids = _write_batch(engine, rows, start, stale_every, unfilled_every)
        ticket_ids += t_ids
        draft_ids += d_ids
    if stale_every:
        _write_followups(
            engine, [t for n, t in enumerate(ticket_ids) if n % stale_every == stale_every - 1], now
        )
    shunted_ids = _write_shunted(engine, shunted, now)
    failed_ids = _write_failed(engine, failed, now)
    return SeedResult(draft_ids, ticket_ids, shunted_ids, failed_ids)


def _next_id(session: Any, table: Any) -> int:
    return int(session.execute(select(func.coalesce(func.max(table.id), 0))).scalar_one()) + 1


def _write_batch(
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
            raw = _raw(mid, sc["sender"], sc["name"], sc["subject"], sc["body"], sc["at"])
            sha = hashlib.sha256(raw).hexdigest()
            findings = _findings(sc)
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
                    "body": _reply(sc, unfilled),
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


def _write_shunted(engine: Engine, count: int, now: datetime) -> list[int]:
    ids = []
    with session_scope(engine) as session:
        for i in range(count):
            raw = f"Subject: garbled {i}\r\n\r\n\x00\x00binary".encode()
            sha = hashlib.sha256(raw).hexdigest()
            if session.get(RawMessage, sha) is None:
                session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
                session.flush()
            msg = Message(
                dedupe_key=f"sha:{sha}",
                sha256=sha,
                size=len(raw),
                source="seed",
                from_addr=f"noreply{i}@mailer.example.net",
                subject=f"garbled {i}",
                received_at=now - timedelta(hours=2 + i),
                state=MessageState.SHUNTED,
                error="ParseError: no readable body (charset x-unknown)",
                attempts=3,
            )
            session.add(msg)
            session.flush()
            ids.append(int(msg.id or 0))
    return ids


def _write_failed(engine: Engine, count: int, now: datetime) -> list[int]:
    ids = []
    with session_scope(engine) as session:
        for i in range(count):
            row = Outbox(
                message_id=f"<sg-failed{i}@example.com>",
                to_addrs=[f"gone{i}@defunct.example"],
                subject=f"Re: old request {i}",
                body="Hello,\n\nfollowing up.\n",
                released_by="alice",
                released_at=now - timedelta(hours=5 + i),
                state=OutboxState.FAILED,
                attempts=8,
                last_error="550 5.1.1 mailbox unavailable",
            )
            session.add(row)
            session.flush()
            ids.append(int(row.id or 0))
    return ids


def add_ticket(
    engine: Engine,
    *,
    sender: str,
    subject: str,
    body: str,
    received_at: datetime,
    name: str = "",
    intent: str = "bug_report",
    confidence: float = 0.8,
    state: str = DraftState.DRAFTED,
    reply: str = "Hello,\n\nthanks for writing; we are looking into it.\n\nBest regards",
    entities: list[dict[str, Any]] | None = None,
    mailbox: str = "support",
) -> tuple[int, int]:
    """Add one ticket with its customer message and a draft; return (ticket id, draft id)."""
    raw = _raw(
        f"added-{received_at:%Y%m%d%H%M%S%f}@{sender.split('@')[-1]}",
        sender,
        name,
        subject,
        body,
        received_at,
    )
    sha = hashlib.sha256(raw).hexdigest()
    with session_scope(engine) as session:
        if session.get(RawMessage, sha) is None:
            session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
        ticket = Ticket(
            subject=subject,
            customer_addr=sender,
            customer_name=name,
            mailbox=mailbox,
            created_at=received_at,
            updated_at=received_at,
            intent=intent,
            confidence=confidence,
        )
        session.add(ticket)
        session.flush()
        message = Message(
            dedupe_key=f"sha:{sha}",
            message_id=None,
            sha256=sha,
            size=len(raw),
            source="seed",
            mailbox=mailbox,
            from_addr=sender,
            from_name=name,
            subject=subject,
            received_at=received_at,
            state=MessageState.DRAFTED,
            ticket_id=ticket.id,
            parsed={"text": body, "attachments": [], "defects": []},
        )
        session.add(message)
        session.flush()
        found = entities or []
        draft = Draft(
            ticket_id=int(ticket.id or 0),
            message_pk=int(message.id or 0),
            state=state,
            to_addr=sender,
            subject=f"Re: {subject} [#{ticket.id}]",
            body=reply,
            intent=intent,
            confidence=confidence,
            model_version=MODEL_VERSION,
            rationale=f"intent {intent} at {confidence:.2f}",
            evidence={"entities": found, "log_findings": []},
            created_at=received_at,
            updated_at=received_at,
        )
        session.add(draft)
        session.flush()
        return int(ticket.id or 0), int(draft.id or 0)


def _write_followups(engine: Engine, ticket_ids: list[int], now: datetime) -> None:
    """A second customer mail on each stale ticket: the reason its draft went stale."""
    with session_scope(engine) as session:
        for tid in ticket_ids:
            ticket = session.get(Ticket, tid)
            if ticket is None or not ticket.customer_addr:
                continue
            body = "Any news? It is still failing for us and the team is blocked.\n"
            at = min(now, ticket.created_at + timedelta(hours=1))
            raw = _raw(
                f"followup-{tid}@{ticket.customer_addr.split('@')[-1]}",
                ticket.customer_addr,
                ticket.customer_name or "",
                f"Re: {ticket.subject}",
                body,
                at,
            )
            sha = hashlib.sha256(raw).hexdigest()
            if session.get(RawMessage, sha) is None:
                session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
                session.flush()
            session.add(
                Message(
                    dedupe_key=f"sha:{sha}",
                    message_id=f"followup-{tid}@seed",
                    sha256=sha,
                    size=len(raw),
                    source="seed",
                    mailbox=ticket.mailbox,
                    from_addr=ticket.customer_addr,
                    from_name=ticket.customer_name,
                    subject=f"Re: {ticket.subject}",
                    received_at=at,
                    state=MessageState.DRAFTED,
                    ticket_id=tid,
                    thread_signal="subject-token",
                    parsed={"text": body, "attachments": [], "defects": []},
                )
            )
