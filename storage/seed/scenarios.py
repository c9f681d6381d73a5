"""The sample support mail that seeding writes: customers, scenarios, replies.

Kept apart from the code that writes rows so the tickets can be read (and extended) as
data. Everything here is a pure function of an index, a seeded `random.Random` and a
fixed `now`: the review UI's snapshots depend on the exact text, so changing any string
or the order of random draws changes every seeded queue.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "CODES",
    "CUSTOMERS",
    "FIXED_NOW",
    "MODEL_VERSION",
    "REGIONS",
    "SCENARIOS",
    "log_findings",
    "raw_mail",
    "reply_text",
    "scenario",
]

FIXED_NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
MODEL_VERSION = "intent-seed-1"

CUSTOMERS = [
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
SCENARIOS: dict[str, tuple[str, str, tuple[str, str], str]] = {
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

REGIONS = ["eu-west-1", "us-east-2", "ap-southeast-1", "eu-central-1"]
CODES = ["502", "503", "504", "429", "401"]


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


def raw_mail(mid: str, sender: str, name: str, subject: str, body: str, at: datetime) -> bytes:
    return (
        f"From: {name} <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\nDate: {at:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def scenario(i: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    intent = list(SCENARIOS)[i % len(SCENARIOS)]
    subject_t, body_t, article, signature = SCENARIOS[intent]
    name, local, domain = CUSTOMERS[(i * 7 + i // len(SCENARIOS)) % len(CUSTOMERS)]
    host = f"db-{rng.choice(['prod', 'stage', 'eu', 'main'])}-{i % 97:02d}.{domain}"
    values = {
        "host": ("HOSTNAME", host),
        "ip": ("IP", f"10.{i % 200}.{(i * 3) % 250}.{(i * 11) % 250}"),
        "code": ("HTTP_STATUS", rng.choice(CODES)),
        "region": ("CLOUD_REGION", rng.choice(REGIONS)),
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


def log_findings(sc: dict[str, Any]) -> list[dict[str, Any]]:
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


def reply_text(sc: dict[str, Any], unfilled: bool) -> str:
    greeting = sc["name"].split()[0]
    extra = "\nYour account id is [[account_id?]]." if unfilled else ""
    return (
        f"Hello {greeting},\n\nthanks for the report about {sc['host']}. "
        f"{sc['article'][1]} describes the next steps; we are looking at it now.{extra}\n\n"
        "Best regards"
    )
