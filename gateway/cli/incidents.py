"""`supportgate incidents`: candidate and declared incidents, and their notices.

`incidents` lists what is declared and what looks like one (tickets from several
customers sharing a failure in a burst, `nlp.incidents`), with spikes in mail volume
and in the `[[metrics]]` that overlap them. The sub-commands do what the review UI's
Incidents screen does, for scripts and for ops without a terminal UI: declare a
candidate, move the status, write the notice, preview it, release it with the typed
count. Every act is done as the logged-in person (see `review.rep_identity`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.cli.runtime import open_engine
from gateway.config import Config
from nlp.incidents import Candidate, Sighting, find_candidates, mail_keys, sighting, split_known
from nlp.sparkline import sparkline
from storage.db import session_scope
from storage.incidents import notice as nt
from storage.incidents import ops
from storage.incidents.facts import mail_facts
from storage.incidents.personal import DEFAULT_BODY
from storage.incidents.tables import STATUSES
from storage.models import utcnow
from storage.review.types import ReviewError

HISTORY = timedelta(days=7)


def sightings(engine: Engine, *, since: datetime) -> list[Sighting]:
    """Every customer mail since `since` with its keys; keys no analysis has stored yet
    (mail analysed before they were kept) are computed once and stored."""
    with session_scope(engine) as session:
        facts = mail_facts(session, since=since, keys_of=mail_keys)
    return [sighting(*f) for f in facts]


def candidates(
    engine: Engine, *, now: datetime, hours: int
) -> tuple[list[Candidate], dict[int, list[int]], list[dict[str, Any]]]:
    """Undeclared candidates, attach suggestions per incident, and the declared ones."""
    since = now - timedelta(hours=hours)
    facts = sightings(engine, since=since - HISTORY)
    with Session(engine) as session:
        declared = [ops.incident_view(session, int(i.id or 0)) for i in ops.list_incidents(session)]
    found = find_candidates(facts, since=since)
    fresh, suggest = split_known(
        found, {int(v.incident.id or 0): {t.ticket_id for t in v.tickets} for v in declared}
    )
    rows = [
        {
            "id": v.incident.id,
            "title": v.incident.title,
            "status": v.incident.status,
            "customers": len(v.customers),
            "tickets": [t.ticket_id for t in v.tickets],
            "notices": [
                {"status": n.status, "released_by": n.released_by, "recipients": n.recipients}
                for n in v.notices
            ],
            "suggested": suggest.get(int(v.incident.id or 0), []),
            "since": v.incident.started_at or v.incident.declared_at,
            "until": v.incident.updated_at if v.incident.status == "resolved" else None,
        }
        for v in declared
    ]
    return fresh, suggest, rows


def _candidate_json(c: Candidate) -> dict[str, Any]:
    return {
        "ref": c.ref,
        "summary": c.describe(),
        "start": c.start.isoformat(),
        "end": c.end.isoformat(),
        "customers": len(c.customers),
        "tickets": list(c.ticket_ids),
        "evidence": [
            {
                "key": list(e.key),
                "tickets": e.tickets,
                "expected": round(e.expected, 3),
                "surprise": round(e.surprise, 1),
            }
            for e in c.evidence
        ],
        "sparkline": sparkline(c.times, start=c.start, end=c.end),
    }


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("incidents", help="candidate and declared incidents, and their notices")
    p.add_argument("--hours", type=int, default=72, help="look at mail this recent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    acts = p.add_subparsers(dest="act", metavar="ACT")
    d = acts.add_parser("declare", help="declare a candidate (by its ref) as an incident")
    d.add_argument("ref")
    d.add_argument("--title", required=True)
    d.add_argument("--hours", type=int, default=72)
    d.set_defaults(func=cmd_declare)
    s = acts.add_parser("status", help="move an incident's status")
    s.add_argument("incident", type=int)
    s.add_argument("status", choices=STATUSES)
    s.set_defaults(func=cmd_status)
    n = acts.add_parser("notice", help="write the next notice (from a file, or the default)")
    n.add_argument("incident", type=int)
    n.add_argument("--file", help="the notice text; placeholders as in the UI")
    n.add_argument("--status", choices=STATUSES)
    n.set_defaults(func=cmd_notice)
    r = acts.add_parser("release", help="preview the unreleased notice; with --count, send it")
    r.add_argument("incident", type=int)
    r.add_argument("--count", type=int, help="the number of recipients, typed to confirm")
    r.set_defaults(func=cmd_release)


def _actor(config: Config) -> str:
    from gateway.cli.review import rep_identity

    return rep_identity(config)


def listing(config: Config, engine: Engine, *, now: datetime, hours: int) -> dict[str, Any]:
    """Declared incidents, undeclared candidates, and the metric spikes beside them."""
    from gateway.metrics.aberrations import metric_spikes
    from gateway.metrics.beside import pair

    fresh, _suggest, declared = candidates(engine, now=now, hours=hours)
    spans = [(f"candidate {c.ref}", c.start, c.end) for c in fresh]
    spans += [(f"incident #{row['id']}", row["since"], row["until"] or now) for row in declared]
    beside, _alone = pair(metric_spikes(config, now=now, recent=timedelta(hours=hours)), spans)
    return {"incidents": declared, "candidates": fresh, "metrics": beside}


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    from gateway.metrics.beside import as_json, sparkline_of

    found = listing(config, open_engine(config), now=utcnow(), hours=args.hours)
    declared, fresh, beside = found["incidents"], found["candidates"], found["metrics"]
    if args.json:
        out = {
            "incidents": [
                {**row, "since": _iso(row["since"]), "until": _iso(row["until"])}
                for row in declared
            ],
            "candidates": [_candidate_json(c) for c in fresh],
            "metrics": [as_json(f, hits) for f, hits in beside],
        }
        print(json.dumps(out, indent=2))
        return 0
    if not fresh and not declared:
        print(f"no incidents declared and no candidates in the last {args.hours} h")
    for row in declared:
        more = f"; {len(row['suggested'])} new matching ticket(s)" if row["suggested"] else ""
        print(
            f"incident #{row['id']} [{row['status']}] {row['title']}: {row['customers']} "
            f"customers, {len(row['tickets'])} tickets, {len(row['notices'])} notice(s){more}"
        )
    for c in fresh:
        print(f"candidate {c.ref}: {c.describe()}")
        print(f"  {sparkline(c.times, start=c.start, end=c.end)}")
    for finding, hits in beside:
        print(f"metric beside {', '.join(hits)}: {finding.describe()}")
        print(f"  {sparkline_of(finding)}")
    return 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def cmd_declare(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    fresh, _, _ = candidates(engine, now=utcnow(), hours=args.hours)
    chosen = next((c for c in fresh if c.ref == args.ref), None)
    if chosen is None:
        refs = ", ".join(c.ref for c in fresh) or "none"
        print(
            f"incidents: no undeclared candidate {args.ref!r} (candidates: {refs})", file=sys.stderr
        )
        return 2
    iid = ops.declare(
        engine,
        title=args.title,
        actor=_actor(config),
        ticket_ids=chosen.ticket_ids,
        keys=chosen.keys,
        candidate_ref=chosen.ref,
        started_at=chosen.start,
    )
    print(f"incident #{iid} declared with {len(chosen.ticket_ids)} tickets")
    return 0


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    return _run(
        lambda: ops.set_status(
            open_engine(config), args.incident, args.status, actor=_actor(config)
        )
    )


def cmd_notice(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    body = Path(args.file).read_text(encoding="utf-8") if args.file else DEFAULT_BODY
    with Session(engine) as session:
        status = args.status or ops.incident_view(session, args.incident).incident.status

    def write() -> None:
        nid = nt.save_notice(engine, args.incident, body=body, actor=_actor(config), status=status)
        print(f"notice {nid} saved; preview with: supportgate incidents release {args.incident}")

    return _run(write)


def cmd_release(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    with Session(engine) as session:
        pending = [
            n for n in ops.incident_view(session, args.incident).notices if not n.released_at
        ]
        if not pending:
            print("incidents: no unreleased notice; write one first", file=sys.stderr)
            return 2
        messages = nt.preview(session, int(pending[-1].id or 0))
    if args.count is None:
        for m in messages:
            print(json.dumps(nt.as_json(m), ensure_ascii=False))
        print(f"{len(messages)} recipients; release with --count {len(messages)}")
        return 0

    def release() -> None:
        sent = nt.release_notice(
            engine,
            int(pending[-1].id or 0),
            actor=_actor(config),
            confirm_count=args.count,
            from_address=config.sender.from_address,
        )
        print(f"released {len(sent)} messages; the sender delivers them")

    return _run(release)


def _run(act: Any) -> int:
    try:
        act()
    except (ReviewError, ValueError) as exc:
        print(f"incidents: {exc}", file=sys.stderr)
        return 2
    return 0
