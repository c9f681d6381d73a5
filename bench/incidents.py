"""How well a generated week's incidents are found: recall, precision, delay, false alarms.

A week of support mail with a 35-customer outage and an 8-customer certificate expiry
(`bench/incident_week.py`, ground truth included) is imported into a fresh SQLite
queue as history (so each mail counts at its own Date) and run through the real
pipeline. Then the week is replayed in 10-minute steps: at each step the candidates
are computed from the mail written so far, exactly as `supportgate incidents` would
at that moment. Printed per seed:

- per incident: ticket recall and precision of the best-matching candidate one hour
  after the incident's last mail, and the delay from its first mail to the first
  candidate holding at least three of its tickets;
- false alarms: distinct candidates during the week that hold none of an incident's
  tickets, per week;
- for comparison, the same for the plain clustering of `nlp.patterns` (tickets
  sharing a key, no burst test) on the same facts.

Run: .venv/bin/python bench/incidents.py [--seeds 7 8 9]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session, select

from bench.incident_week import Week, generate_week
from gateway.config import parse_config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from nlp.incidents import Candidate, Sighting, find_candidates, sighting
from nlp.patterns import TicketFacts, find_clusters
from storage.db import init_db, make_engine
from storage.incidents.ops import mail_facts
from storage.models import Message

STEP = timedelta(minutes=10)
WINDOW = timedelta(hours=72)
HISTORY = timedelta(days=7)


def load(week: Week, tmp: Path) -> tuple[list[Sighting], dict[str, set[int]]]:
    config = parse_config({"storage": {"url": f"sqlite:///{tmp / 'q.db'}"}}, base_dir=tmp)
    engine = make_engine(config.database_url)
    init_db(engine)
    for mail in week.mails:
        ingest(engine, mail.raw, source="file")
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        facts = [sighting(*f) for f in mail_facts(session, since=week.start - HISTORY)]
        by_mid = dict(session.exec(select(Message.message_id, Message.ticket_id)).all())
    truth = {
        name: {int(t) for mid in inc.message_ids if (t := by_mid.get(mid.strip("<>"))) is not None}
        for name, inc in week.incidents.items()
    }
    return facts, truth


def candidates_at(facts: list[Sighting], now: datetime) -> list[Candidate]:
    seen = [f for f in facts if f.at <= now]
    return find_candidates(seen, since=now - WINDOW)


def plain_at(facts: list[Sighting], now: datetime) -> list[set[int]]:
    """The old `patterns` clusters: any 3 tickets sharing a signature or entity."""
    by_ticket: dict[int, TicketFacts] = {}
    for f in facts:
        if now - WINDOW <= f.at <= now:
            keys = tuple((k, v) for k, v in f.keys if k not in ("intent", "signature"))
            sigs = tuple(v for k, v in f.keys if k == "signature")
            old = by_ticket.get(f.ticket_id)
            if old is not None:
                keys, sigs = keys + old.entities, sigs + old.signatures
            by_ticket[f.ticket_id] = TicketFacts(f.ticket_id, f.customer, None, sigs, keys)
    return [set(c.ticket_ids) for c in find_clusters(by_ticket.values(), min_tickets=3)]


Groups = Callable[[list[Sighting], datetime], list[set[int]]]


def ours_at(facts: list[Sighting], now: datetime) -> list[set[int]]:
    return [set(c.ticket_ids) for c in candidates_at(facts, now)]


def score(method: Groups, facts: list[Sighting], week: Week, truth: dict[str, set[int]]) -> str:
    def fn(now: datetime) -> list[set[int]]:
        return method(facts, now)

    lines = []
    for name, inc in week.incidents.items():
        tickets = truth[name]
        groups = fn(inc.end + timedelta(hours=1))
        best = max(groups, key=lambda g: len(g & tickets), default=set())
        recall = len(best & tickets) / max(len(tickets), 1)
        precision = len(best & tickets) / max(len(best), 1)
        delay = None
        # No method can see an incident before three customers wrote: delay counts from
        # the first mail and, in brackets, from the third customer's.
        firsts = sorted(min(f.at for f in facts if f.ticket_id == t) for t in tickets)
        third = firsts[2] if len(firsts) >= 3 else inc.start
        t = inc.start
        while t <= inc.end + timedelta(hours=2):
            if any(len(g & tickets) >= 3 for g in fn(t)):
                delay = (t - inc.start).total_seconds() / 60
                break
            t += STEP
        after_third = (inc.start + timedelta(minutes=delay or 0) - third) / timedelta(minutes=1)
        shown = f"{delay:.0f} min ({after_third:.0f})" if delay is not None else "never"
        lines.append(
            f"  {name:<7} tickets {len(tickets):>3}  recall {recall:.2f}  "
            f"precision {precision:.2f}  delay {shown}"
        )
    alarms: set[frozenset[int]] = set()
    every = set().union(*truth.values())
    t = week.start + timedelta(days=1)
    while t <= week.end:
        for g in fn(t):
            if not g & every and not any(g <= a or a <= g for a in alarms):
                alarms.add(frozenset(g))
        t += timedelta(hours=1)
    weeks = (week.end - week.start - timedelta(days=1)) / timedelta(days=7)
    lines.append(f"  false alarms per week: {len(alarms) / weeks:.1f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    args = parser.parse_args()
    for seed in args.seeds:
        week = generate_week(seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            facts, truth = load(week, Path(tmp))
        print(f"seed {seed}: {len(week.mails)} mails")
        print(" ours (bursts of shared keys, scored against each key's usual share):")
        print(score(ours_at, facts, week, truth))
        print(" plain clustering (3+ tickets sharing a key, as `patterns` did):")
        print(score(plain_at, facts, week, truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
