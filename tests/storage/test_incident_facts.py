"""Each mail's incident keys are stored with its analysis, and reading them finds the same.

Finding candidates used to scan every mail's text for symptoms on every listing; now
the keys are computed once (by the pipeline, through `gateway.conversation.incidents.
incident_keys`, or by the first listing that reads a mail analysed before) and stored in
`AnalysisRecord.incident_keys`. Whichever way they were got, the sightings and the
candidates must be exactly those the text scan gives, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.cli.incidents import sightings
from gateway.conversation.incidents import incident_keys
from nlp.incidents import Key, find_candidates, mail_keys, sighting
from nlp.types import Analysis, Entity, LogFinding
from storage.db import session_scope
from storage.incidents.facts import MailFacts, mail_facts
from storage.models import AnalysisRecord, Draft, Message, MessageState
from storage.seed import FIXED_NOW, add_ticket

SINCE = FIXED_NOW - timedelta(days=3)


@pytest.fixture
def db(sqlite_and_pg: Engine) -> Engine:
    return sqlite_and_pg


def analysis(n: int, *, burst: bool) -> Analysis:
    host = "edge-7.cdn.example" if burst else f"app-{n}.customer{n}.example"
    text = (
        f"Since 09:00 {host} answers 502 Bad Gateway and the certificate has expired."
        if burst
        else f"Please resend invoice {n}; our portal IS DOWN since the update."
    )
    finding = LogFinding("error.log", 40, 12, f"sig{n % 2}", "<*> upstream closed")
    return Analysis(
        model_version="t",
        intent="outage_report" if burst else "billing",
        confidence=0.9,
        scores={},
        abstained=False,
        entities=(Entity("HOSTNAME", f" {host.upper()} ", 10, 20), Entity("EMAIL", "a@b", 0, 3)),
        reply_text=text,
        log_findings=(finding,) if burst else (),
    )


def fill(engine: Engine) -> dict[int, list[list[str]]]:
    """Quiet mail over two days, then a burst from six customers; one mail has no
    analysis, one was suppressed. Stores analyses as the pipeline does; returns the
    keys the pipeline would store with each (by message)."""
    expected: dict[int, list[list[str]]] = {}
    for n in range(16):
        burst = n >= 10
        at = FIXED_NOW - (timedelta(minutes=5 * (16 - n)) if burst else timedelta(hours=4 * n))
        subject = "Edge errors" if burst else f"Invoice {n}"
        _, draft_id = add_ticket(
            engine,
            sender=f"ops{n}@shop{n}.example",
            subject=subject,
            body="see subject",
            received_at=at,
        )
        with session_scope(engine) as session:
            draft = session.get(Draft, draft_id)
            assert draft is not None
            message = session.get(Message, draft.message_pk)
            assert message is not None
            if n == 3:
                message.state = MessageState.SUPPRESSED
                session.add(message)
            if n == 4:
                continue  # no analysis: its subject alone names its symptoms
            found = analysis(n, burst=burst)
            data = found.to_json()
            session.add(
                AnalysisRecord(
                    message_pk=int(message.id or 0),
                    model_version=found.model_version,
                    intent=found.intent,
                    confidence=found.confidence,
                    entities=data["entities"],
                    log_findings=data["log_findings"],
                    reply_text=found.reply_text,
                )
            )
            expected[int(message.id or 0)] = incident_keys(found, message.subject)
    return expected


def as_seen(facts: list[MailFacts]) -> list[tuple[int, str, datetime, tuple[Key, ...]]]:
    return sorted(
        (s.ticket_id, s.customer, s.at, tuple(sorted(s.keys)))
        for s in (sighting(*f) for f in facts)
    )


def test_keys_are_stored_once_and_read_back_as_the_text_scan_finds_them(db: Engine) -> None:
    expected = fill(db)
    with Session(db) as session:
        scanned = mail_facts(session, since=SINCE)  # no keys stored: the text is read
    assert all(f[-1] is None and f[6] for f in scanned)
    with session_scope(db) as session:
        computed = mail_facts(session, since=SINCE, keys_of=mail_keys)
    with Session(db) as session:
        rows = session.exec(select(AnalysisRecord.message_pk, AnalysisRecord.incident_keys))
        stored = {int(pk): keys for pk, keys in rows.all() if keys is not None}
        read = mail_facts(session, since=SINCE)
    # What the pipeline would have stored, mail by mail; the suppressed one is not read.
    assert len(stored) == len(expected) - 1
    assert stored == {pk: keys for pk, keys in expected.items() if pk in stored}
    assert len(scanned) == 15  # the suppressed one is left out; the unanalysed one is not
    # Known keys come without the text, entities or signatures they came from.
    assert sum(f[-1] is not None and not f[3] and not f[6] for f in read) == 14
    assert as_seen(scanned) == as_seen(computed) == as_seen(read)
    burst = as_seen(read)[-1][3]
    assert ("symptom", "certificate expired") in burst
    assert ("HOSTNAME", "edge-7.cdn.example") in burst


def test_the_listing_finds_the_same_candidates_from_stored_keys(db: Engine) -> None:
    fill(db)
    with Session(db) as session:
        by_text = [sighting(*f) for f in mail_facts(session, since=SINCE)]
    expected = find_candidates(by_text, since=FIXED_NOW - timedelta(hours=2))
    assert expected and len(expected[0].customers) == 6
    first = sightings(db, since=SINCE)  # computes and stores the keys
    again = sightings(db, since=SINCE)  # reads them
    for seen in (first, again):
        assert find_candidates(seen, since=FIXED_NOW - timedelta(hours=2)) == expected
    with Session(db) as session:
        unkeyed = session.exec(
            select(Message.state)
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id))
            .where(col(AnalysisRecord.incident_keys).is_(None))
        ).all()
    assert unkeyed == [MessageState.SUPPRESSED]  # never read, so never computed


def test_keys_stored_at_analysis_are_not_computed_again(db: Engine) -> None:
    expected = fill(db)
    with session_scope(db) as session:
        for record in session.exec(select(AnalysisRecord)).all():
            record.incident_keys = [["marker", str(record.message_pk)]]
            session.add(record)
    seen = {s.ticket_id: s.keys for s in sightings(db, since=SINCE)}
    marked = [k for keys in seen.values() for k in keys if k[0] == "marker"]
    assert len(marked) == len(expected) - 1  # all but the suppressed mail's
