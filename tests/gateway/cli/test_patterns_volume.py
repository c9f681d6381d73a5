"""Mail volume counted by the database gives `patterns` exactly what counting in Python did.

`storage.volume` counts the customer mail of four weeks per five-minute bin and intent in
SQL; `gateway.cli.patterns.anomalies` builds its series from those counts and reads the
mails' times only around a spike, for its sparkline. The result must be the one the
earlier code got from every mail's time (`bin_counts`, kept below as the reference),
including mail on a bin's edge, a microsecond before it, and within the half millisecond
that SQLite's own date functions would round across it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from gateway.cli.patterns import STEP, anomalies
from nlp.sparkline import sparkline
from nlp.volume import Spike, bin_counts, detect_spikes
from storage.models import AnalysisRecord, Message, RawMessage
from storage.volume import mail_bins

NOW = datetime(2026, 11, 27, 14, 32, 10, 250_000, tzinfo=UTC)


@pytest.fixture
def db(sqlite_and_pg: Engine) -> Engine:
    return sqlite_and_pg


def edge_times() -> list[datetime]:
    """Times on and just before bin edges, and a few that are neither."""
    edge = NOW.replace(hour=10, minute=5, second=0, microsecond=0)
    out = []
    for days in (1, 3, 9):
        at = edge - timedelta(days=days)
        out += [at, at - timedelta(microseconds=1), at - timedelta(microseconds=400),
                at + timedelta(microseconds=999_999), at - timedelta(seconds=59)]  # fmt: skip
    return out


def fill(engine: Engine) -> None:
    """Three weeks of quiet mail (two intents, some unanalysed, one outbound), a burst of
    one intent in the last hours, and mail on the bins' edges."""
    times: list[tuple[datetime, str | None]] = []
    start = NOW - timedelta(days=21)
    for i in range(21 * 24 * 2):  # two an hour
        at = start + timedelta(minutes=30 * i, seconds=(i * 37) % 1700, microseconds=i * 7919)
        times.append((at, (None, "billing", "bug_report")[i % 3]))
    for i in range(40):  # the burst
        times.append((NOW - timedelta(hours=2) + timedelta(seconds=83 * i), "outage_report"))
    times += [(at, "billing") for at in edge_times()]
    times.append((NOW, "billing"))  # at the very end
    messages: list[dict[str, Any]] = [
        {"id": n + 1, "dedupe_key": f"k{n}", "sha256": "a", "received_at": at + timedelta(hours=3),
         "written_at": at, "direction": "outbound" if n == 5 else "inbound",
         "envelope_to": [], "to_addrs": [], "references": []}
        for n, (at, _intent) in enumerate(times)
    ]  # fmt: skip
    analyses = [
        {
            "message_pk": n + 1,
            "model_version": "t",
            "intent": intent,
            "confidence": 0.9,
            "created_at": NOW,
        }
        for n, (_at, intent) in enumerate(times)
        if intent
    ]
    with Session(engine) as session:
        session.execute(insert(RawMessage), [{"sha256": "a", "size": 1, "data": b"x"}])
        session.execute(insert(Message), messages)
        session.execute(insert(AnalysisRecord), analyses)
        session.commit()
        if engine.dialect.name == "postgresql":
            session.execute(func.setval("message_id_seq", len(messages)).select())
            session.commit()


def reference(engine: Engine, *, now: datetime, hours: int = 72) -> list[tuple[Spike, str]]:
    """`anomalies` as it was: every mail's time read and counted in Python."""
    written = func.coalesce(Message.written_at, Message.received_at)
    with Session(engine) as session:
        rows = session.execute(
            sa_select(written, col(AnalysisRecord.intent))
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id), isouter=True)
            .where(col(Message.direction) == "inbound", written >= now - timedelta(days=28))
        ).all()
    by_scope: dict[str, list[datetime]] = {"all": []}
    for at, intent in rows:
        by_scope["all"].append(at)
        if intent:
            by_scope.setdefault(intent, []).append(at)
    first = min(by_scope["all"]) + timedelta(days=1)
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    for scope, times in sorted(by_scope.items()):
        series = bin_counts(times, start=start, end=now, step=STEP)
        for spike in detect_spikes(series, scope=scope, step=STEP, recent=timedelta(hours=hours)):
            around = spike.start - timedelta(hours=2), spike.end + timedelta(hours=1)
            found.append((spike, sparkline(times, start=around[0], end=around[1])))
    found.sort(key=lambda f: (-f[0].score, f[0].scope))
    return found


def test_counts_per_bin_are_exact_on_the_edges(db: Engine) -> None:
    fill(db)
    since = NOW - timedelta(days=28)
    with Session(db) as session:
        bins = mail_bins(session, since=since, step=STEP)
        rows = session.execute(
            sa_select(col(Message.written_at), col(AnalysisRecord.intent))
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id), isouter=True)
            .where(col(Message.direction) == "inbound", col(Message.written_at) >= since)
        ).all()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected: dict[str, dict[int, int]] = {"all": {}}
    for at, intent in rows:
        number = (at - epoch) // STEP  # exact: integer microseconds
        for scope in ("all", intent) if intent else ("all",):
            expected.setdefault(scope, {})
            expected[scope][number] = expected[scope].get(number, 0) + 1
    assert bins == expected
    edges = {(at - epoch) // STEP for at in edge_times()}
    assert len(edges) == 6  # each edge and the microsecond before it: different bins


def test_spikes_and_sparklines_are_those_counting_every_time_found(db: Engine) -> None:
    fill(db)
    expected = reference(db, now=NOW)
    assert {s.scope for s, _line in expected} >= {"outage_report", "all"}
    assert anomalies(db, now=NOW) == expected
    later = NOW + timedelta(minutes=7, microseconds=1)
    assert anomalies(db, now=later) == reference(db, now=later)
