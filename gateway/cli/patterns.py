"""`supportgate patterns`: clusters of open tickets and unusual mail volume, from storage.

The findings themselves are computed by `nlp.patterns` (pure); this module only reads
the facts they need in a few portable queries and presents the result.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from nlp.patterns import (
    Anomaly,
    Cluster,
    TicketFacts,
    find_clusters,
    hourly_counts,
    volume_anomalies,
)
from storage.models import AnalysisRecord, Draft, DraftState, Message, utcnow

OPEN = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)


def ticket_facts(engine: Engine, *, since: datetime) -> list[TicketFacts]:
    """One fact row per open ticket with mail since `since`."""
    with Session(engine) as session:
        rows = session.exec(
            select(Draft.ticket_id, Message.from_addr, AnalysisRecord)
            .join(Message, col(Message.id) == col(Draft.message_pk))
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Draft.message_pk))
            .where(col(Draft.state).in_(OPEN), col(Message.received_at) >= since)
        ).all()
    facts = []
    for ticket_id, from_addr, analysis in rows:
        entities = tuple(
            (str(e.get("label", "")), str(e.get("text", "")).strip().lower())
            for e in analysis.entities or []
        )
        signatures = tuple(
            str(f.get("signature")) for f in analysis.log_findings or [] if f.get("signature")
        )
        facts.append(
            TicketFacts(
                ticket_id=int(ticket_id),
                customer_domain=(from_addr or "").rpartition("@")[2].lower(),
                intent=analysis.intent,
                signatures=signatures,
                entities=entities,
            )
        )
    return facts


def anomalies(engine: Engine, *, now: datetime, history_days: int = 7) -> list[Anomaly]:
    start = now - timedelta(days=history_days)
    with Session(engine) as session:
        rows = session.exec(
            select(Message.received_at, AnalysisRecord.intent)
            .join(
                AnalysisRecord,
                col(AnalysisRecord.message_pk) == col(Message.id),
                isouter=True,
            )
            .where(Message.direction == "inbound", col(Message.received_at) >= start)
        ).all()
    by_scope: dict[str, list[datetime]] = {"all": []}
    for received_at, intent in rows:
        by_scope["all"].append(received_at)
        if intent:
            by_scope.setdefault(intent, []).append(received_at)
    found: list[Anomaly] = []
    if not rows:
        return found
    # History starts with the first mail we ever saw: the empty days before a new
    # installation are not a quiet baseline.
    start = max(start, min(by_scope["all"]))
    for scope, times in sorted(by_scope.items()):
        series = hourly_counts(times, start=start, end=now)
        found.extend(volume_anomalies(series, scope=scope))
    found.sort(key=lambda a: (-a.score, a.scope))
    return found


def report(
    engine: Engine, *, hours: int, min_tickets: int, now: datetime | None = None
) -> tuple[list[Cluster], list[Anomaly]]:
    now = now or utcnow()
    clusters = find_clusters(
        ticket_facts(engine, since=now - timedelta(hours=hours)), min_tickets=min_tickets
    )
    return clusters, anomalies(engine, now=now)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("patterns", help="tickets that share a failure, and unusual mail volume")
    p.add_argument("--hours", type=int, default=72, help="look at open tickets this recent")
    p.add_argument("--min-tickets", type=int, default=3, help="smallest cluster to show")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_patterns)


def cmd_patterns(args: argparse.Namespace, config: Config) -> int:
    from gateway.cli.runtime import open_engine

    clusters, found = report(
        open_engine(config), hours=args.hours, min_tickets=max(args.min_tickets, 2)
    )
    if args.json:
        out = {
            "clusters": [{**asdict(c), "size": c.size, "summary": c.describe()} for c in clusters],
            "anomalies": [
                {**asdict(a), "hour": a.hour.isoformat(), "summary": a.describe()} for a in found
            ],
        }
        print(json.dumps(out, indent=2))
        return 0
    if not clusters and not found:
        print(f"no clusters of {args.min_tickets}+ open tickets and no unusual volume")
        return 0
    for cluster in clusters[:20]:
        intents = ", ".join(f"{name} {n}" for name, n in cluster.intents[:3])
        ids = ", ".join(f"#{t}" for t in cluster.ticket_ids[:12])
        more = " …" if cluster.size > 12 else ""
        print(f"cluster: {cluster.describe()} ({intents}): {ids}{more}")
    for anomaly in found[:20]:
        print(f"volume: {anomaly.describe()}")
    return 0
