"""A year of a busy support desk's mail, written straight into PostgreSQL with COPY.

Measuring the queue at a million messages needs a million rows shaped like real ones:
raw mail of about 4 KB on average (log-normal sizes, a few up to 60 KB), threads where
a third of the mail follows up an earlier ticket, a few thousand customer domains of
very different sizes, analyses with a handful of entities and some log findings, and a
draft per answered message in the states a year of work leaves behind (most sent,
some discarded or superseded, the newest `open_share` still open plus a trickle of old
ones never closed; open tickets owe a reply within 4 to 24 hours). Each draft carries its
mail's time as the product's ORM copies it (storage/mail_time.py); analyses carry no
incident keys, as in a database upgraded from before they were stored, so the first
listing of incidents computes those of its window. Everything derives from one seed.
ORM inserts would take hours; rows go in through COPY in chunks, with foreign-key
triggers off during the load (the rows are consistent by construction), and id
sequences are moved past them afterwards.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage.seed.scenarios import CODES, REGIONS, SCENARIOS

INTENTS = list(SCENARIOS)
INTENT_WEIGHTS = [18, 12, 14, 10, 8, 16, 12, 10]
SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "da", "pe", "zo", "ri", "an", "el"]
TLDS = ["com", "io", "de", "co.uk", "fr", "es", "dev", "net", "nl", "se"]
FIRST = ["Priya", "Jonas", "Mei", "Tomás", "Aisha", "Sam", "Olga", "Lucas", "Ana", "Ravi"]
LAST = ["Raman", "Berg", "Chen", "Ortega", "Bello", "Whitfield", "Petrova", "Silva", "Kaur"]
LOCALS = ["ops", "dev", "it", "admin", "sre", "cto", "ana"]
HOSTS = ["db-prod", "db-main", "api", "web", "cache", "queue", "search", "auth", "etl"]
FILLER = [
    "Since {ts} the {host} endpoint answers with HTTP {code} for roughly a third of calls.",
    "Our monitoring shows p99 latency on {host} at {ms} ms instead of the usual 40 ms.",
    "We deployed version {ver} yesterday evening and nothing else changed on our side.",
    "The replica at {ip} in {region} keeps falling behind and then reconnects.",
    "Clients log 'connection reset by peer' against {host} every few minutes.",
    "Could you check whether anything changed on your side around {ts}?",
    "We already restarted the workers and rotated the credentials, without any effect.",
    "This blocks our nightly reports, so a quick look would be much appreciated.",
    "The error started right after the maintenance window announced for {region}.",
    "Attached is the relevant part of the log; the first failure is near the top.",
]
SIGNOFF = "\n\nThanks a lot,\n{name}\n{company}\n"


@dataclass
class Scale:
    """Where the generator stands: ids handed out so far and the tickets still active."""

    total: int
    end: datetime
    days: int = 365
    open_share: float = 0.08
    seed: int = 11
    next_message: int = 1
    next_ticket: int = 1
    recent: deque[tuple[int, int, str, str]] = field(default_factory=lambda: deque(maxlen=400))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        rng = self.rng
        domains = sorted(
            {"".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) + "." + rng.choice(TLDS)
             for _ in range(5000)}
        )  # fmt: skip
        self.customers = [
            (f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"{local}@{d}", d)
            for d in domains
            for local in rng.sample(LOCALS, 1 + int(rng.paretovariate(2.5)) % 5)
        ]  # fmt: skip
        weights = [1 / (i + 10) for i in range(len(self.customers))]
        self.cum = list(itertools.accumulate(weights))
        self.filler = [self._sentence() for _ in range(4000)]
        self.sentence = sum(map(len, self.filler)) / len(self.filler) + 1

    def _sentence(self) -> str:
        rng = self.rng
        return rng.choice(FILLER).format(
            ts=f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} UTC",
            host=f"{rng.choice(HOSTS)}-{rng.randint(1, 40):02d}",
            code=rng.choice(CODES),
            ms=rng.randint(200, 4000),
            ver=f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            ip=f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            region=rng.choice(REGIONS),
        )

    def at(self, i: int) -> datetime:
        span = timedelta(days=self.days).total_seconds()
        offset = span * (i + self.rng.random()) / self.total
        return self.end - timedelta(seconds=span - offset)


def chunk(s: Scale, count: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the next `count` messages, per table, in COPY column order."""
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
    rng = s.rng
    for _ in range(count):
        i = s.next_message - 1
        pk = s.next_message
        s.next_message += 1
        at = s.at(i)
        follow = bool(s.recent) and rng.random() < 0.35
        if follow:
            tid, cust, subject, intent = s.recent[rng.randrange(len(s.recent))]
            name, addr, domain = s.customers[cust]
            subject = _re(subject)
        else:
            cust = bisect.bisect(s.cum, rng.random() * s.cum[-1]) % len(s.customers)
            name, addr, domain = s.customers[cust]
            intent = rng.choices(INTENTS, INTENT_WEIGHTS)[0]
            tid = s.next_ticket
            s.next_ticket += 1
        subject_t, body_t, (article, title), signature = SCENARIOS[intent]
        host = f"{HOSTS[cust % len(HOSTS)]}-{cust % 17:02d}.{domain}"
        ip = f"10.{cust % 250}.{i % 250}.{rng.randint(1, 254)}"
        values = {"HOSTNAME": host, "IP": ip, "HTTP_STATUS": rng.choice(CODES),
                  "CLOUD_REGION": rng.choice(REGIONS)}  # fmt: skip
        intro = body_t.format(host=host, ip=values["IP"], code=values["HTTP_STATUS"],
                              region=values["CLOUD_REGION"])  # fmt: skip
        if not follow:
            subject = subject_t.format(host=host, code=values["HTTP_STATUS"])
            s.recent.append((tid, cust, subject, intent))
        size = min(60_000, max(700, int(rng.lognormvariate(8.14, 0.65))))
        filler = " ".join(rng.choices(s.filler, k=max(1, int((size - 650) / s.sentence))))
        text = f"{intro}\n\n{filler}" + SIGNOFF.format(name=name, company=domain)
        quote = f"\n\nOn an earlier day, Support wrote:\n> Thanks, we are looking into {host}.\n"
        body = text + (quote if follow else "")
        mid = f"{pk}.{rng.getrandbits(40):x}@{domain}"
        raw = (
            f"Received: from mx.{domain} by mx.example.com; {at:%a, %d %b %Y %H:%M:%S +0000}\r\n"
            f"From: {name} <{addr}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{mid}>\r\nDate: {at:%a, %d %b %Y %H:%M:%S +0000}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
        ).encode()
        sha = hashlib.sha256(raw).hexdigest()
        entities = [
            {"label": label, "text": v, "start": intro.find(v), "end": intro.find(v) + len(v),
             "source": "body"}
            for label, v in values.items()
            if v in intro
        ]  # fmt: skip
        findings = _findings(rng, signature, host) if signature and rng.random() < 0.4 else []
        suppressed = rng.random() < 0.04
        draft_state, msg_state = _states(s, i, rng, suppressed)
        confidence = round(0.31 if intent == "needs_triage" else 0.55 + rng.random() * 0.44, 2)
        written = at - timedelta(seconds=rng.randint(5, 300))
        rows["rawmessage"].append((sha, len(raw), raw))
        parsed = {"text": body, "attachments": [], "defects": []}
        rows["message"].append((
            pk, f"mid:{mid}", mid, sha, len(raw), "inbound", "smtp",
            "billing" if intent == "billing" else "support", addr, '["support@example.com"]',
            addr, name, '["support@example.com"]', subject, None, "[]", at, written, msg_state,
            1, "auto-reply" if suppressed else None, tid, "token" if follow else "new",
            json.dumps(parsed),
        ))  # fmt: skip
        if not follow:
            status = "open" if draft_state in OPEN else "closed"
            # The desk's reply clock on open tickets (4, 14 or 24 h), without a random draw.
            due = at + timedelta(hours=4 + 10 * (tid % 3)) if status == "open" else None
            rows["ticket"].append((tid, subject, addr, name, "support", status, at, at, intent,
                                   confidence, signature or None, due))  # fmt: skip
        if suppressed:
            continue
        scores = {intent: confidence, "needs_triage": round(1 - confidence, 2)}
        rows["analysis"].append((
            pk, pk, "intent-scale-1", intent, confidence, intent == "needs_triage",
            json.dumps(scores), json.dumps(entities), json.dumps(findings), text, "[]", at,
        ))  # fmt: skip
        first = name.split()[0]
        reply = (
            f"Hello {first},\n\nthanks for the report about {host}. {title} describes the next "
            f"steps; we are looking at it now and will write again within the hour.\n\n"
            "Best regards\nSupport"
        )
        suggestions = [{"article_id": article, "title": title, "score": 0.8, "matched_terms": []}]
        brief = {"urgent": rng.random() < 0.05, "flags": [], "language": "en"}
        evidence = {"entities": entities, "log_findings": findings, "brief": brief}
        rows["draft"].append((
            pk, tid, pk, draft_state, 1, addr, f"{_re(subject)} [#{tid}]", reply, intent,
            confidence, "intent-scale-1", article, json.dumps(suggestions), "[]",
            f"intent {intent} at {confidence:.2f}; KB {article} matched", json.dumps(evidence),
            at, at, written,
        ))  # fmt: skip
    return rows


OPEN = ("drafted", "needs_triage", "stale")


def _re(subject: str) -> str:
    return subject if subject.startswith("Re: ") else f"Re: {subject}"


def _states(s: Scale, i: int, rng: random.Random, suppressed: bool) -> tuple[str, str]:
    """(draft state, message state): the newest `open_share` and 1.5 % of the rest open."""
    if suppressed:
        return "", "suppressed"
    if i >= s.total * (1 - s.open_share) or rng.random() < 0.015:
        old = i < s.total * (1 - s.open_share)
        return ("stale" if old else rng.choice(["drafted"] * 8 + ["needs_triage"])), "drafted"
    roll = rng.random()
    if roll < 0.8:
        return "sent", "sent"
    return ("discarded" if roll < 0.86 else "superseded"), "drafted"


def _findings(rng: random.Random, signature: str, host: str) -> list[dict[str, Any]]:
    line = f"2026-11-20T07:12:0{rng.randint(0, 9)}Z ERROR {host}: {signature}"
    return [{"attachment": "server.log", "total_lines": rng.randint(200, 9000),
             "error_lines": rng.randint(1, 40), "signature": signature,
             "template": f"<*> ERROR <*>: {signature}", "templates": [], "note": "",
             "evidence": [{"line_no": rng.randint(1, 9000), "text": line}]}]  # fmt: skip


COLUMNS: dict[str, tuple[str, ...]] = {
    "rawmessage": ("sha256", "size", "data"),
    "ticket": ("id", "subject", "customer_addr", "customer_name", "mailbox", "status",
               "created_at", "updated_at", "intent", "confidence", "signature", "reply_due"),
    "message": ("id", "dedupe_key", "message_id", "sha256", "size", "direction", "source",
                "mailbox", "envelope_from", "envelope_to", "from_addr", "from_name",
                "to_addrs", "subject", "in_reply_to", "references", "received_at",
                "written_at", "state", "attempts", "suppression_reason", "ticket_id",
                "thread_signal", "parsed"),
    "analysis": ("id", "message_pk", "model_version", "intent", "confidence", "abstained",
                 "scores", "entities", "log_findings", "reply_text", "notes", "created_at"),
    "draft": ("id", "ticket_id", "message_pk", "state", "version", "to_addr", "subject",
              "body", "intent", "confidence", "model_version", "article_id", "suggestions",
              "unfilled", "rationale", "evidence", "created_at", "updated_at",
              "mail_written_at"),
}  # fmt: skip


def load(conninfo: str, s: Scale, upto: int, *, every: int = 5000) -> None:
    """Write messages until `upto` have been written, through COPY on one connection."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        while s.next_message <= upto:
            rows = chunk(s, min(every, upto - s.next_message + 1))
            with conn.cursor() as cur:
                for table, columns in COLUMNS.items():
                    quoted = ", ".join(f'"{c}"' for c in columns)
                    with cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                        for row in rows[table]:
                            copy.write_row(row)
            conn.commit()
        for table in ("ticket", "message", "analysis", "draft"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        conn.commit()
