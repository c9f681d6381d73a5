"""`supportgate patterns`: clusters of open tickets and unusual mail volume, from storage.

The findings themselves are computed by `nlp.patterns` and `nlp.volume` (pure); this
module only reads the facts they need in a few portable queries, by each mail's own
time, and presents the result beside the spikes in the `[[metrics]]` that overlap. At a
million messages a year the reads were most of the time: they select only the columns
used, and mail volume is counted per bin by the database (`storage.volume`).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from gateway.config import Config
from nlp.patterns import Cluster, TicketFacts, find_clusters
from nlp.sparkline import sparkline
from nlp.volume import Spike, detect_spikes
from storage.models import AnalysisRecord, Draft, DraftState, Message, utcnow
from storage.volume import ALL, EPOCH, bin_start, mail_bins, mail_times_within

OPEN = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)
# Five-minute bins: an outage is flagged within 15 minutes far more often than with ten.
STEP = timedelta(minutes=5)


def ticket_facts(engine: Engine, *, since: datetime) -> list[TicketFacts]:
    """One fact row per open ticket with mail since `since`."""
    with Session(engine) as session:
        # The analysis's columns, not the row: its text and scores are most of its bytes.
        rows = (
            session.connection()
            .execute(
                sa_select(
                    col(Draft.ticket_id),
                    col(Message.from_addr),
                    col(AnalysisRecord.intent),
                    col(AnalysisRecord.entities),
                    col(AnalysisRecord.log_findings),
                )
                .join(Message, col(Message.id) == col(Draft.message_pk))
                .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Draft.message_pk))
                .where(
                    col(Draft.state).in_(OPEN),
                    func.coalesce(Message.written_at, Message.received_at) >= since,
                )
            )
            .all()
        )
    facts = []
    for ticket_id, from_addr, intent, entities, findings in rows:
        facts.append(
            TicketFacts(
                ticket_id=int(ticket_id),
                customer_domain=(from_addr or "").rpartition("@")[2].lower(),
                intent=intent,
                signatures=tuple(
                    str(f.get("signature")) for f in findings or [] if f.get("signature")
                ),
                entities=tuple(
                    (str(e.get("label", "")), str(e.get("text", "")).strip().lower())
                    for e in entities or []
                ),
            )
        )
    return facts


def anomalies(
    engine: Engine, *, now: datetime, hours: int = 72, history_days: int = 28
) -> list[tuple[Spike, str]]:
    """Spikes in mail volume in the last `hours`, judged against the time of week; each
    with a sparkline of its scope's mail per 10 minutes around it."""
    since = now - timedelta(days=history_days)
    with Session(engine) as session:
        # Counted per bin by the database (storage.volume): the same series `bin_counts`
        # makes of every mail's time, without reading them all.
        by_scope = mail_bins(session, since=since, step=STEP)
        if not by_scope[ALL]:
            return []
        # From the first whole day we saw mail: the empty hours before a new installation,
        # or before the first imported mail, are not a quiet baseline. (A bin lies within
        # one day, so the first mail's bin has the first mail's date.)
        first = bin_start(min(by_scope[ALL]), STEP) + timedelta(days=1)
        start = first.replace(hour=0, minute=0, second=0, microsecond=0)
        offset = int((start - EPOCH) / STEP)
        size = math.ceil((now - start) / STEP)
        found: list[tuple[Spike, str]] = []
        starts = [start + i * STEP for i in range(size)]
        for scope, bins in sorted(by_scope.items()):
            series = [(at, float(bins.get(offset + i, 0))) for i, at in enumerate(starts)]
            recent = timedelta(hours=hours)
            for spike in detect_spikes(series, scope=scope, step=STEP, recent=recent):
                around = spike.start - timedelta(hours=2), spike.end + timedelta(hours=1)
                times = mail_times_within(
                    session, since=since, start=around[0], end=around[1], scope=scope
                )
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
