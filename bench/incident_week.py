"""A generated week of support mail with two incidents hidden in it, and the truth about them.

Incident detection (volume spikes, clusters of shared failures) needs a week of mail
whose answer is known. Real queues cannot be shared, so this module writes one: 150
invented customers at their own domains, ordinary traffic with a working-day and
weekly rhythm and Poisson arrivals over many intents, entities shared by chance (a 401
here, us-east-1 there), and two incidents — a regional outage on Friday afternoon
(35 customers within 2.5 hours, logs in three formats, follow-ups, colleagues who
write separately) and an expired certificate on Wednesday (8 customers over 20 hours).
Every mail is a full RFC 5322 message built with the stdlib, so it can be fed to the
gateway unchanged. The same seed always gives the same bytes: only `random.Random(seed)`
draws, and nothing iterates over a set.

Why this module is long: the wording tables are the realism, and they sit at the end of
the module next to the few functions that fill them in; split apart, neither half reads.
"""

from __future__ import annotations

import json
import math
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path

SUPPORT = "support@example-cloud.test"
DEFAULT_START = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday
WEEKDAY_MAILS, WEEKEND_MAILS = 46.0, 15.0
# Share of a day's mail per UTC hour: the working day in Europe and the Americas.
HOURLY = (0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.9, 1.8, 3.5, 4.6, 5.0, 5.0,
          4.6, 4.8, 5.0, 4.8, 4.5, 3.8, 2.6, 1.6, 1.1, 0.8, 0.6, 0.4)  # fmt: skip
OUTAGE_START = (4, timedelta(hours=14, minutes=10))  # Friday 14:10 UTC
OUTAGE_SPAN = timedelta(hours=2, minutes=30)
CERT_START = (2, timedelta(hours=9))  # Wednesday 09:00 UTC
CERT_SPAN = timedelta(hours=20)
OUTAGE_HOST = "api.eu-central-1.example-cloud.test"


@dataclass(frozen=True, slots=True)
class GeneratedMail:
    raw: bytes
    message_id: str
    sender: str
    written_at: datetime  # the Date header's instant, UTC
    incident: str | None
    customer: str = ""  # the customer's domain
    intent: str = ""  # what the mail is about, in the intent model's names ("follow_up" too)


@dataclass(frozen=True, slots=True)
class IncidentTruth:
    name: str
    start: datetime
    end: datetime
    customers: frozenset[str]  # domains
    message_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Week:
    start: datetime
    days: int
    mails: list[GeneratedMail]
    incidents: dict[str, IncidentTruth]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Customer:
    domain: str
    people: tuple[Person, ...]
    offset: timezone  # the zone its mail clients write Date headers in
    weight: float  # how often it writes, relative to the others


@dataclass(frozen=True, slots=True)
class _Sent:
    message_id: str
    subject: str
    body: str
    person: Person


@dataclass
class _Builder:
    rng: random.Random
    mails: list[GeneratedMail] = field(default_factory=list)

    def mail(self, customer: Customer, person: Person, at: datetime, subject: str, body: str,
             *, intent: str, incident: str | None = None, reply_to: _Sent | None = None,
             log: tuple[str, str] | None = None) -> _Sent:  # fmt: skip
        at = at.replace(microsecond=0)  # the Date header has whole seconds
        serial = len(self.mails) + 1
        message_id = f"<{self.rng.getrandbits(56):014x}.{serial}@mail.{customer.domain}>"
        msg = EmailMessage()
        msg["From"] = formataddr((person.name, person.address))
        msg["To"] = SUPPORT
        msg["Date"] = format_datetime(at.astimezone(customer.offset))
        msg["Message-ID"] = message_id
        if reply_to is not None:
            subject = subject or f"Re: {reply_to.subject.removeprefix('Re: ')}"
            msg["In-Reply-To"] = reply_to.message_id
            msg["References"] = reply_to.message_id
            quoted = "\n".join(f"> {line}" for line in reply_to.body.splitlines())
            body += f"\n\n{reply_to.person.name} wrote:\n{quoted}\n"
        msg["Subject"] = subject
        msg.set_content(body)
        if log is not None:
            msg.add_attachment(log[1], filename=log[0])
            msg.set_boundary(f"=_{self.rng.getrandbits(64):016x}")  # the stdlib's is random
        self.mails.append(GeneratedMail(msg.as_bytes(policy=SMTP), message_id, person.address,
                                        at, incident, customer.domain, intent))  # fmt: skip
        return _Sent(message_id, subject, body, person)


def generate_week(seed: int = 7, start: datetime = DEFAULT_START, days: int = 7) -> Week:
    rng = random.Random(seed)
    customers = make_customers(rng)
    builder = _Builder(random.Random(seed * 7919 + 1))
    _ordinary(rng, builder, customers, start, days)
    incidents: dict[str, IncidentTruth] = {}
    writers = (
        ("cert", CERT_START, CERT_SPAN, _cert),
        ("outage", OUTAGE_START, OUTAGE_SPAN, _outage),
    )
    for name, (day, offset), span, writer in writers:
        if day >= days:
            continue
        begin = start + timedelta(days=day) + offset
        before = len(builder.mails)
        writer(rng, builder, customers, begin, span)
        mine = builder.mails[before:]
        incidents[name] = IncidentTruth(name, begin, begin + span,
                                        frozenset(m.customer for m in mine),
                                        frozenset(m.message_id for m in mine))  # fmt: skip
    mails = sorted(builder.mails, key=lambda m: (m.written_at, m.message_id))
    return Week(start, days, mails, incidents)


def write_eml(week: Week, folder: Path) -> list[Path]:
    """One `.eml` file per mail, named in the order they were written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, mail in enumerate(week.mails):
        path = folder / f"{index:04d}-{mail.written_at:%a-%H%M}.eml"
        path.write_bytes(mail.raw)
        paths.append(path)
    return paths


def make_customers(rng: random.Random, count: int = 150) -> list[Customer]:
    companies = [f"{a}{b}" for a in COMPANY_A for b in COMPANY_B]
    rng.shuffle(companies)
    customers = []
    for company in companies[:count]:
        domain = company.lower() + rng.choice((".example", ".example", ".test"))
        people = [_person(rng, domain) for _ in range(2 if rng.random() < 0.25 else 1)]
        if len(people) == 2 and people[0].address == people[1].address:
            people.pop()
        offset = timezone(timedelta(minutes=rng.choice(OFFSETS_MIN)))
        customers.append(Customer(domain, tuple(people), offset, rng.paretovariate(2.0)))
    return customers


def _person(rng: random.Random, domain: str) -> Person:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", first, f"{first}_{last}"))
    return Person(f"{first} {last}", f"{local.lower()}@{domain}")


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; the means here are a few mails an hour."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _ordinary(rng: random.Random, b: _Builder, customers: list[Customer], start: datetime,
              days: int) -> None:  # fmt: skip
    weights = [c.weight for c in customers]
    threads: dict[str, list[_Sent]] = {}
    for day in range(days):
        midnight = start + timedelta(days=day)
        level = WEEKEND_MAILS if midnight.weekday() >= 5 else WEEKDAY_MAILS
        level *= rng.lognormvariate(0.0, 0.12)  # some days are busier than others
        for hour, share in enumerate(HOURLY):
            for _ in range(poisson(rng, level * share / sum(HOURLY))):
                at = midnight + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
                customer = rng.choices(customers, weights)[0]
                earlier = threads.get(customer.domain, [])
                if earlier and rng.random() < 0.3:
                    old = rng.choice(earlier)
                    body = fill(rng, rng.choice(FOLLOW_UPS)) + sign(rng, old.person)
                    b.mail(customer, old.person, at, "", body, intent="follow_up", reply_to=old)
                    continue
                person = rng.choice(customer.people)
                intent, subject, body, log_chance = _ordinary_text(rng)
                log = _small_log(rng, intent, at) if rng.random() < log_chance else None
                sent = b.mail(customer, person, at, subject, body + sign(rng, person),
                              intent=intent, log=log)  # fmt: skip
                threads.setdefault(customer.domain, []).append(sent)


def _ordinary_text(rng: random.Random) -> tuple[str, str, str, float]:
    """(intent, subject, body, chance of a log): one template, greeted and filled in."""
    intent, subjects, bodies, log_chance = rng.choices(INTENTS, INTENT_WEIGHTS)[0]
    pick, slots = rng.randrange(len(bodies)), dict[str, str]()
    subject = fill(rng, rng.choice(subjects[pick].split("|")), slots)
    text = fill(rng, bodies[pick], slots).split("\n\n", 1)[1]
    greeting = rng.choice(GREETINGS)
    body = greeting + (text if greeting else text[0].upper() + text[1:])
    return intent, subject, body + fill(rng, rng.choice(ASIDES), slots), log_chance


def _outage(rng: random.Random, b: _Builder, customers: list[Customer], begin: datetime,
            span: timedelta) -> None:  # fmt: skip
    pairs = [c for c in customers if len(c.people) == 2]
    chosen = rng.sample(pairs, 3)
    chosen += rng.sample([c for c in customers if c not in chosen], 32)
    last = begin + span - timedelta(minutes=1)

    def after(at: datetime, low: float, high: float) -> datetime:
        return min(at + timedelta(minutes=rng.uniform(low, high)), last)

    formats = [i % 3 for i in range(18)]  # every other customer attaches a log
    rng.shuffle(formats)
    for index, customer in enumerate(chosen):
        while True:  # most notice within minutes, a few only hours later
            at = begin + timedelta(minutes=1.5 + rng.lognormvariate(math.log(18.0), 0.9))
            if at < last:
                break
        log = _outage_log(rng, formats.pop(), begin, at) if index % 2 == 0 else None
        style = index % len(OUTAGE)
        first = _outage_mail(rng, b, customer, customer.people[0], at, style, log)
        if index < 3:  # a colleague writes on their own, unaware of the first mail
            _outage_mail(rng, b, customer, customer.people[1], after(at, 3, 40), style + 4, None)
        if 3 <= index < 9:
            body = fill(rng, rng.choice(CHASERS)) + sign(rng, first.person)
            b.mail(customer, first.person, after(at, 35, 100), "", body, intent="outage_report",
                   incident="outage", reply_to=first)  # fmt: skip


def _outage_mail(rng: random.Random, b: _Builder, customer: Customer, person: Person,
                 at: datetime, style: int, log: tuple[str, str] | None) -> _Sent:  # fmt: skip
    subject, body = OUTAGE[style % len(OUTAGE)]
    since = (at.astimezone(customer.offset) - timedelta(minutes=rng.randint(2, 9))).strftime(
        "%H:%M"
    )
    older = None
    if not subject:  # written as a reply in an older thread of theirs
        older_id = f"<{rng.getrandbits(48):012x}@mail.{customer.domain}>"
        older = _Sent(older_id, rng.choice(OLD_SUBJECTS), "Thanks, that solved it for now.", person)
    slots = {"since": since}
    subject = fill(rng, subject, slots)
    body = fill(rng, body, slots) + sign(rng, person)
    return b.mail(customer, person, at, subject, body,
                  intent="outage_report", incident="outage", reply_to=older, log=log)  # fmt: skip


def _cert(rng: random.Random, b: _Builder, customers: list[Customer], begin: datetime,
          span: timedelta) -> None:  # fmt: skip
    for index, customer in enumerate(rng.sample(customers, 8)):
        while True:  # the certificate fails for everyone; people notice in working hours
            at = begin + timedelta(seconds=rng.uniform(0, span.total_seconds()))
            if rng.random() < HOURLY[at.hour] / max(HOURLY):
                break
        person = rng.choice(customer.people)
        log = _cert_log(rng, index % 4, begin, at) if index % 3 != 1 else None
        subject, body = CERT[index % len(CERT)]
        b.mail(customer, person, at, fill(rng, subject), fill(rng, body) + sign(rng, person),
               intent="outage_report", incident="cert", log=log)  # fmt: skip


def _rid(rng: random.Random) -> str:
    return f"req-{rng.getrandbits(40):010x}"


def _outage_log(rng: random.Random, kind: int, begin: datetime, at: datetime) -> tuple[str, str]:
    """The same failure as plain lines, Python logging or JSON lines; the first line is the
    last good request before the onset."""
    seen = min((at - begin).total_seconds(), 900.0)
    stamps = sorted(at - timedelta(seconds=rng.uniform(5, seen)) for _ in range(rng.randint(3, 8)))
    root_logger = rng.random() < 0.4  # logging.basicConfig's format: no time at all
    lines = []
    for ts in [begin - timedelta(seconds=rng.uniform(5, 120)), *stamps]:
        rid, port, ms = _rid(rng), rng.randint(32768, 60999), rng.randint(0, 999)
        ok = ts < begin
        when = f"{ts:%Y-%m-%d %H:%M:%S}"
        if kind == 0:
            lines.append(f"{when} INFO GET /v2/orders 200 {ms}ms id={rid}" if ok
                         else f"{when} ERROR upstream connect error or disconnect/reset before "
                         f"headers. reset reason: connection failure, host={OUTAGE_HOST}:443 "
                         f"local_port={port} status=503 code=E_UPSTREAM_UNAVAILABLE "
                         f"id={rid}")  # fmt: skip
        elif kind == 1 and root_logger:
            lines.append(f"INFO:root:POST /v2/orders 201 ({rid})" if ok
                         else f"ERROR:root:ConnectionRefusedError: [Errno 111] Connection refused "
                         f"({OUTAGE_HOST}:443 via lb-eu-central-1) request={rid}")  # fmt: skip
        elif kind == 1:
            lines.append(f"{when},{ms:03d} - app.client - "
                         + ("INFO - POST /v2/orders 201" if ok else
                            f"ERROR - POST https://{OUTAGE_HOST}/v2/orders failed: 503 Service "
                            "Unavailable (E_UPSTREAM_UNAVAILABLE)")
                         + f" request_id={rid}")  # fmt: skip
        else:
            fields = (
                {"status": 200}
                if ok
                else {
                    "msg": "upstream unavailable",
                    "status": 503,
                    "code": "E_UPSTREAM_UNAVAILABLE",
                    "port": port,
                }
            )
            lines.append(json.dumps({"ts": f"{ts:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z",
                                     "level": "info" if ok else "error", "host": OUTAGE_HOST,
                                     **fields, "request_id": rid}))  # fmt: skip
    return ("app.jsonl" if kind == 2 else "app.log"), "\n".join(lines) + "\n"


def _cert_log(rng: random.Random, kind: int, begin: datetime, at: datetime) -> tuple[str, str]:
    ts = at - timedelta(seconds=rng.uniform(0, min(900.0, (at - begin).total_seconds())))
    line = [
        f'{ts:%Y/%m/%d %H:%M:%S} Get "https://auth.example-cloud.test/oauth/token": x509: '
        f"certificate has expired or is not yet valid: current time {ts:%Y-%m-%dT%H:%M:%SZ} "
        f"is after {begin - timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}",
        f"{ts:%Y-%m-%d %H:%M:%S},{rng.randint(0, 999):03d} - auth - ERROR - "
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: certificate has expired (_ssl.c:1006) host=auth.example-cloud.test",
        "curl: (60) SSL certificate problem: certificate has expired\n"
        "More details here: https://curl.se/docs/sslcerts.html",
        f"Error: certificate has expired\n    at TLSSocket.onConnectSecure (node:_tls_wrap:1674:34)"
        f" {{ code: 'CERT_HAS_EXPIRED', host: 'auth.example-cloud.test', at: '{ts:%H:%M:%S}' }}",
    ][kind]
    return "tls-error.log", line + "\n"


def _small_log(rng: random.Random, intent: str, at: datetime) -> tuple[str, str]:
    lines = []
    for _ in range(rng.randint(2, 5)):
        ts = at - timedelta(seconds=rng.uniform(60, 7200))
        lines.append(f"{ts:%Y-%m-%d %H:%M:%S} " + fill(rng, rng.choice(SMALL_LOGS[intent])))
    return "output.log", "\n".join(sorted(lines)) + "\n"


def fill(rng: random.Random, template: str, slots: dict[str, str] | None = None) -> str:
    """The template with each {name} replaced by its value in `slots`, or a fresh random one
    that is added there (so a subject and its body name the same bucket)."""
    slots = {} if slots is None else slots
    for _, name, _, _ in string.Formatter().parse(template):
        if name and name not in slots:
            slots[name] = SLOTS[name](rng)
    return template.format(**slots)


def sign(rng: random.Random, person: Person) -> str:
    first = person.name.split()[0]
    return rng.choice(("\n\nThanks,\n{first}", "\n\nBest regards,\n{name}", "\n\n-- \n{name}",
                       "\n\nCheers,\n{first}", "\n\nThank you\n{name}")).format(
        first=first, name=person.name)  # fmt: skip


# ---- wording -------------------------------------------------------------------------
COMPANY_A = ("Acme", "Blue", "North", "Bright", "Iron", "Cedar", "Silver", "Harbor", "Quantum",
             "Maple", "Nimbus", "Orbit", "Pine", "Red", "Summit", "Tidal", "Vertex", "Willow",
             "Zephyr", "Granite")  # fmt: skip
COMPANY_B = ("labs", "logistics", "health", "retail", "analytics", "pay", "media", "foods",
             "robotics", "travel", "energy", "games")  # fmt: skip
FIRST = ("Anna", "Ben", "Chloe", "David", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kenji", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara",
         "Uwe", "Vera", "Wei", "Yusuf", "Zoe")  # fmt: skip
LAST = ("Novak", "Schmidt", "Garcia", "Okafor", "Lindqvist", "Rossi", "Tanaka", "Dubois",
        "Silva", "Kowalski", "Murphy", "Haddad", "Jensen", "Moreau", "Patel", "Ivanova",
        "Keller", "Costa")  # fmt: skip
OFFSETS_MIN = (0, 0, 60, 60, 60, 120, -300, -300, -360, -480, 330, 540, -180)
SLOTS: dict[str, Callable[[random.Random], str]] = {
    "region": lambda r: r.choice(("us-east-1",) * 5 + ("eu-west-1",) * 4
                                 + ("us-west-2", "us-west-2", "ap-southeast-1", "eu-central-1")),
    "invoice": lambda r: f"INV-2026-{r.randint(1000, 9999)}",
    "bucket": lambda r: r.choice(("backups", "media-prod", "exports", "logs-archive", "assets")),
    "n": lambda r: str(r.choice((3, 5, 12, 40, 50, 120, 200, 600, 900))),
    "n2": lambda r: str(r.choice((64, 128, 256, 1000))),
    "month": lambda r: r.choice(("October", "November")),
    "custom": lambda r: r.choice(("shop", "www", "app", "status")) + ".customer-site.example",
    "app": lambda r: r.choice(("cart", "billing", "search", "ingest")),
    "version": lambda r: f"2.{r.randint(10, 19)}.{r.randint(0, 6)}",
    "account": lambda r: str(r.randint(100000, 999999)),
    "amount": lambda r: f"{r.randint(120, 4800)}.{r.randint(0, 99):02d}",
}  # fmt: skip
# (intent, subjects, bodies, chance of a small log); subject i goes with body i, and "|"
# separates ways of saying the same subject.
_Intent = tuple[str, tuple[str, ...], tuple[str, ...], float]
INTENTS: tuple[_Intent, ...] = (
    ("billing", ("Question about invoice {invoice}|Invoice {invoice} looks wrong",
                 "Charged twice this month?|Double charge on our card",
                 "VAT ID missing on our invoices", "Switch to annual billing",
                 "Refund for {invoice}|Refund request"),
     ("Hi,\n\nour invoice {invoice} shows {amount} EUR but our plan should cost less. Could you "
      "explain the extra line items?",
      "Hello,\n\nit looks like we were charged twice for {month}. Both charges hit the same card a "
      "few minutes apart. Please refund the duplicate.",
      "Hi there,\n\nour finance team needs our VAT ID on the invoices. Can you add it to {invoice} "
      "and all future ones?",
      "Hello,\n\nwe'd like to move from monthly to annual billing. What happens to the rest of "
      "this month?",
      "Hi,\n\nplease refund {invoice}, we cancelled that project before the billing date."), 0.0),
    ("account_login", ("Can't log in|Login not working|Cannot sign in to the console",
                       "Password reset email never arrives", "Locked out of my account",
                       "Lost my MFA device", "SSO login keeps looping"),
     ("Hi,\n\nI can't log in to the console since this morning. I just reset the password and it "
      "still says invalid credentials.",
      "Hello,\n\nI requested a password reset three times but no email arrives, spam folder "
      "included.",
      "Hi,\n\nafter a few wrong attempts my account is locked. How long does the lock last?",
      "Hello,\n\nI lost my phone with the authenticator app. How do I get back into our account?",
      "Hi,\n\nour SSO login sends me back to the login page in a loop. It worked yesterday."), 0.0),
    ("access_permissions", ("API returns 401 after key rotation|401 with the new API key",
                            "403 Forbidden on {bucket}", "Permission denied for new team member",
                            "401 Unauthorized|E_AUTH_INVALID_TOKEN on one job"),
     ("Hi,\n\nafter rotating our API key, calls to https://api.{region}.example-cloud.test/v2/"
      "projects return 401 Unauthorized. The new key is active in the dashboard.",
      "Hello,\n\nwe get 403 Forbidden reading objects from bucket {bucket} in {region}. The "
      "service account has the storage.reader role.",
      "Hi,\n\nI added a colleague to our organisation but she gets 'permission denied' on every "
      "project. Which role does she need?",
      "Hello,\n\none of our jobs gets HTTP 401 with E_AUTH_INVALID_TOKEN since this morning; other "
      "jobs with the same token work."), 0.15),
    ("quota_limits", ("Getting 429 Too Many Requests|Rate limited by the API",
                      "Quota increase request for {region}|Need more vCPUs in {region}",
                      "E_QUOTA_EXCEEDED when creating instances",
                      "429 on the metrics endpoint"),
     ("Hi,\n\nour import gets 429 Too Many Requests after about {n} calls per minute. What is the "
      "limit on our plan, and can it be raised?",
      "Hello,\n\nplease raise our vCPU quota in {region} to {n2}. We launch a service next week.",
      "Hi,\n\ncreating instances in {region} fails with E_QUOTA_EXCEEDED although the console "
      "shows plenty of headroom.",
      "Hello,\n\nthe metrics endpoint returns 429 (E_RATE_LIMITED) during our nightly export. How "
      "should we back off?"), 0.15),
    ("config_help", ("CNAME for {custom} not resolving|NXDOMAIN for {custom}",
                     "How do I set up a private DNS zone?|Private DNS in {region}",
                     "How to configure health checks?", "Rotating credentials without downtime",
                     "Own certificate for {custom}?"),
     ("Hi,\n\nwe added a CNAME from {custom} to our app, but dig still returns NXDOMAIN after {n} "
      "minutes. What else do we need to configure?",
      "Hello,\n\nhow do we create a private DNS zone so our services in {region} resolve "
      "db.internal?",
      "Hi,\n\nwhat is the recommended health check for a service behind the load balancer? Our app "
      "needs ~40 seconds to start.",
      "Hello,\n\ncan we rotate database credentials without restarting every pod?",
      "Hi,\n\ncan we bring our own certificate for {custom}, or do you issue one?"), 0.0),
    ("feature_request", ("Feature request: export audit log", "Terraform support for alert rules",
                         "Webhooks for billing events?", "Idea: per-project budgets"),
     ("Hi team,\n\nit would be great to export the audit log to our own bucket. Is it planned?",
      "Hello,\n\nany plans to support alert rules in the Terraform provider?",
      "Hi,\n\nwe'd like a webhook when an invoice is issued. Is that possible today?",
      "Hello,\n\nsmall request: per-project budgets with an email at 80%."), 0.0),
    ("performance", ("Slow queries since yesterday|Database got slow",
                     "Latency up in {region}|High p99 latency", "Database CPU at 100%"),
     ("Hi,\n\nour database in {region} is much slower since yesterday; simple queries take {n} ms "
      "instead of 20 ms. Nothing changed on our side.",
      "Hello,\n\np99 latency from api.{region}.example-cloud.test is about {n} ms, it used to be "
      "under 200 ms. Anything known?",
      "Hi,\n\nCPU on our managed database is pinned at 100% since the maintenance window."), 0.1),
    ("bug_report", ("Deploy fails with exit code 137|{app}-worker keeps restarting",
                    "Dashboard shows wrong usage", "CLI crashes on login",
                    "Error 500 when saving settings"),
     ("Hi,\n\npod/{app}-worker restarts with exit code 137 (OOMKilled) although the limit is 2Gi.",
      "Hello,\n\nthe usage graph shows zero for two days but we are definitely using the service.",
      "Hi,\n\n`cloudctl login` crashes with a traceback on version {version}.",
      "Hello,\n\nsaving project settings returns error 500 with code E_INTERNAL."), 0.35),
    ("data_request", ("Access logs for an audit", "GDPR deletion request", "Export all our data"),
     ("Hi,\n\nfor our audit we need the access logs of the last 90 days. How can we get them?",
      "Hello,\n\nplease delete the personal data of a former employee from our account.",
      "Hi,\n\nhow can we export all our data before we migrate?"), 0.0),
    ("security_report", ("Possible leaked API key", "Suspicious login from unknown IP"),
     ("Hi,\n\nwe pushed an API key to a public repository by mistake and revoked it. Was it used?",
      "Hello,\n\nwe got a login notification from 203.0.113.{n} that none of us recognise."), 0.0),
)  # fmt: skip
INTENT_WEIGHTS = (14, 12, 10, 10, 14, 7, 8, 8, 4, 2)
SMALL_LOGS = {
    "access_permissions": ("WARN GET https://api.{region}.example-cloud.test/v2/projects 401 "
                           "code=E_AUTH_INVALID_TOKEN", "ERROR s3 get {bucket}/index.json 403"),
    "quota_limits": ("WARN retry POST https://api.{region}.example-cloud.test/v2/jobs status=429 "
                     "code=E_RATE_LIMITED", "ERROR create instance failed: E_QUOTA_EXCEEDED"),
    "performance": ("WARN slow query took {n}ms", "INFO p99={n}ms region={region}"),
    "bug_report": ("ERROR pod/{app}-worker OOMKilled exit code 137", "ERROR HTTP 500 E_INTERNAL",
                   "INFO cloudctl {version} starting"),
}  # fmt: skip
GREETINGS = ("Hi,\n\n", "Hello,\n\n", "Hi team,\n\n", "Good morning,\n\n", "Dear support,\n\n",
             "Hey,\n\n", "")  # fmt: skip
ASIDES = ("", "", "", " Our account id is acc-{account}.", " This is fairly urgent for us.",
          " Thanks in advance!", " Happy to jump on a call if that helps.",
          " We're on the Business plan, if that matters.")  # fmt: skip
FOLLOW_UPS = ("Thanks, that worked!", "Any news on this?", "Still happening today, unfortunately.",
              "Attached is the output you asked for; tell me if you need more.",
              "Never mind, we found the problem on our side. Thanks!",
              "Could you give us an update? It's been {n} minutes.")  # fmt: skip
OLD_SUBJECTS = ("Quota increase request for eu-central-1", "Question about our invoice",
                "Latency in eu-central-1", "Health check configuration")  # fmt: skip
# (subject, body); an empty subject means the mail is a reply in an older thread.
OUTAGE = (
    ("API down in eu-central-1?", "Getting 503s from {host} since about {since}. Something down?"),
    ("URGENT: production down, 503 from the eu-central-1 API",
     "Our whole production stack in eu-central-1 is down, every call fails with "
     "E_UPSTREAM_UNAVAILABLE. We are losing money every minute. Call me."),
    ("connection refused", "curl: (7) Failed to connect to {host} port 443: Connection refused"),
    ("Everything failing since {since}",
     "Hi team,\n\nsince {since} our workers get 'upstream connect error or disconnect/reset before "
     "headers' from your Frankfurt API. Other regions are fine. Can you confirm an incident?"),
    ("lb-eu-central-1 returns 503",
     "Hello,\n\nthe load balancer lb-eu-central-1 answers 503 Service Unavailable for our service "
     "although all our targets are healthy."),
    ("Is there an incident in eu-central-1??",
     "Your status page is all green but nothing works for us. 503 on every request. This is the "
     "second time this quarter!"),
    ("E_UPSTREAM_UNAVAILABLE on all requests",
     "Hi,\n\nsince {since} every request to https://{host}/v2/orders returns 503 with code "
     "E_UPSTREAM_UNAVAILABLE. Log attached if it helps."),
    ("Checkout down!!", "Customers can't check out, calls to {host} fail with 503. Escalate pls."),
    ("", "Not sure it's related to this old ticket, but since {since} all our calls to {host} are "
         "refused (503 / connection refused). Please help."),
)  # fmt: skip
SLOTS["host"] = lambda r: r.choice((OUTAGE_HOST, OUTAGE_HOST, "the eu-central-1 API"))
CHASERS = ("Any update? Still seeing 503s.", "Hello?? It's been an hour.",
           "Any ETA for a fix? We're still down.", "Still broken on our side, any news?",
           "Please update us, our customers are asking.", "Any update on this?")  # fmt: skip
CERT = (
    ("SSL error connecting to auth.example-cloud.test",
     "Hi,\n\nsince this morning our token refresh fails: certificate has expired. Log attached."),
    ("x509: certificate has expired or is not yet valid",
     "Hello,\n\nour Go services can't reach auth.example-cloud.test, the error is in the subject."),
    ("Login API: certificate has expired", "Your auth endpoint serves an expired certificate?"),
    ("TLS handshake fails for the auth endpoint",
     "Hi,\n\nCERTIFICATE_VERIFY_FAILED (certificate has expired) when our backend calls "
     "auth.example-cloud.test. Our clock is correct. Please renew your certificate."),
)  # fmt: skip
