"""`supportgate patterns`: clusters of open tickets and unusual mail volume, from storage.

The findings themselves are computed by `nlp.patterns` and `nlp.volume` (pure); this
module only reads the facts they need in a few portable queries, by each mail's own
time, and presents the result beside the spikes in the `[[metrics]]` that overlap.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from nlp.patterns import Cluster, TicketFacts, find_clusters
from nlp.sparkline import sparkline
from nlp.volume import Spike, bin_counts, detect_spikes
from storage.models import AnalysisRecord, Draft, DraftState, Message, utcnow

OPEN = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)
# Five-minute bins: an outage is flagged within 15 minutes far more often than with ten.
STEP = timedelta(minutes=5)


def ticket_facts(engine: Engine, *, since: datetime) -> list[TicketFacts]:
    """One fact row per open ticket with mail since `since`."""
    with Session(engine) as session:
        rows = session.exec(
            select(Draft.ticket_id, Message.from_addr, AnalysisRecord)
            .join(Message, col(Message.id) == col(Draft.message_pk))
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Draft.message_pk))
            .where(
                col(Draft.state).in_(OPEN),
                func.coalesce(Message.written_at, Message.received_at) >= since,
            )
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


def mail_times(engine: Engine, *, since: datetime) -> dict[str, list[datetime]]:
    """Each customer mail's own time since `since`: all of them, and per intent."""
    written = func.coalesce(Message.written_at, Message.received_at)
    with Session(engine) as session:
        rows = session.execute(
            sa_select(written, col(AnalysisRecord.intent))
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id), isouter=True)
            .where(col(Message.direction) == "inbound", written >= since)
        ).all()
    by_scope: dict[str, list[datetime]] = {"all": []}
    for at, intent in rows:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        by_scope["all"].append(at)
        if intent:
            by_scope.setdefault(intent, []).append(at)
    return by_scope


def anomalies(
    engine: Engine, *, now: datetime, hours: int = 72, history_days: int = 28
) -> list[tuple[Spike, str]]:
    """Spikes in mail volume in the last `hours`, judged against the time of week; each
    with a sparkline of its scope's mail per 10 minutes around it."""
    by_scope = mail_times(engine, since=now - timedelta(days=history_days))
    if not by_scope["all"]:
        return []
    # From the first whole day we saw mail: the empty hours before a new installation,
    # or before the first imported mail, are not a quiet baseline.
    first = min(by_scope["all"]) + timedelta(days=1)
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    found: list[tuple[Spike, str]] = []
    for scope, times in sorted(by_scope.items()):
        series = bin_counts(times, start=start, end=now, step=STEP)
        for spike in detect_spikes(series, scope=scope, step=STEP, recent=timedelta(hours=hours)):
            around = spike.start - timedelta(hours=2), spike.end + timedelta(hours=1)
            found.append((spike, sparkline(times, start=around[0], end=around[1])))
    found.sort(key=lambda f: (-f[0].score, f[0].scope))
    return found


def report(
    engine: Engine, *, hours: int, min_tickets: int, now: datetime | None = None
) -> tuple[list[Cluster], list[tuple[Spike, str]]]:
    now = now or utcnow()
    clusters = find_clusters(
        ticket_facts(engine, since=now - timedelta(hours=hours)), min_tickets=min_tickets
    )
    return clusters, anomalies(engine, now=now, hours=hours)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("patterns", help="tickets that share a failure, and unusual mail volume")
    p.add_argument("--hours", type=int, default=72, help="look at open tickets this recent")
    p.add_argument("--min-tickets", type=int, default=3, help="smallest cluster to show")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_patterns)


def cmd_patterns(args: argparse.Namespace, config: Config) -> int:
    from gateway.cli.runtime import open_engine
    from gateway.metrics.aberrations import metric_spikes
    from gateway.metrics.beside import as_json, pair, sparkline_of

    now = utcnow()
    clusters, found = report(
        open_engine(config), hours=args.hours, min_tickets=max(args.min_tickets, 2), now=now
    )
    metrics = metric_spikes(config, now=now, recent=timedelta(hours=args.hours))
    spans = [(f"volume {s.scope}", s.start, s.end) for s, _ in found]
    beside, alone = pair(metrics, spans)
    if args.json:
        out = {
            "clusters": [{**asdict(c), "size": c.size, "summary": c.describe()} for c in clusters],
            "anomalies": [
                {**asdict(a), "start": a.start.isoformat(), "end": a.end.isoformat(),
                 "summary": a.describe(), "sparkline": line}
                for a, line in found
            ],
            "metrics": [as_json(f, hits) for f, hits in beside] + [as_json(f) for f in alone],
        }  # fmt: skip
        print(json.dumps(out, indent=2))
        return 0
    if not clusters and not found and not metrics:
        print(f"no clusters of {args.min_tickets}+ open tickets and no unusual volume")
        return 0
    for cluster in clusters[:20]:
        intents = ", ".join(f"{name} {n}" for name, n in cluster.intents[:3])
        ids = ", ".join(f"#{t}" for t in cluster.ticket_ids[:12])
        more = " …" if cluster.size > 12 else ""
        print(f"cluster: {cluster.describe()} ({intents}): {ids}{more}")
    for anomaly, line in found[:20]:
        print(f"volume: {anomaly.describe()}\n  {line}")
    for finding, hits in beside:
        print(f"metric beside {', '.join(hits)}: {finding.describe()}\n  {sparkline_of(finding)}")
    for finding in alone:
        print(f"metric: {finding.describe()}")
    return 0
