"""An outage from first mail to the resolved update, through the real pipeline.

Mail is ingested as imported history (its Date is the customer's time), analysed,
grouped into a candidate, declared, answered with one notice per customer address,
and followed by a resolved update to the same people. A ticket arriving while the
incident is declared is attached and drafted with the notice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.cli.incidents import candidates
from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.incidents import notice as nt
from storage.incidents import ops
from storage.incidents.personal import DEFAULT_BODY
from storage.incidents.tables import IncidentDelivery
from storage.models import Draft, DraftState, Message, Outbox, utcnow
from storage.review.types import ConfirmationMismatch, ReviewError

LOG = "2026-11-20 14:12:03,123 - app.client - ERROR - upstream connect error: 503 from {host}\n"
WORDING = [
    "Since a few minutes every call to {host} fails with E_UPSTREAM_UNAVAILABLE.",
    "We get E_UPSTREAM_UNAVAILABLE from {host} on all requests, production is down!",
    "Is {host} down? Our checkout returns E_UPSTREAM_UNAVAILABLE for every order.",
    "Calls to {host} started failing with E_UPSTREAM_UNAVAILABLE right now.",
]
ORDINARY = [
    ("Invoice question", "Could you resend the invoice for October? Our finance team lost it."),
    ("How do I rotate keys", "What is the recommended way to rotate API keys without downtime?"),
    ("Quota", "Please raise our storage quota for project prj-apollo to 5 TB for a month."),
    ("Login", "I cannot log in since I changed my password, it says invalid credentials."),
]


def mail(sender: str, name: str, subject: str, body: str, at: datetime, log: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg.set_content(f"Hi,\n\n{body}\n\nThanks,\n{name}")
    if log:
        msg.add_attachment(log, filename="app.log")
    return msg.as_bytes()


@pytest.fixture
def outage(engine: Engine, make_config: Callable[..., Config]) -> tuple[Config, datetime]:
    """Two days of ordinary mail, then five customers (one writing twice) in 40 minutes."""
    config = make_config()
    now = utcnow().replace(microsecond=0)
    for i in range(16):
        subject, body = ORDINARY[i % len(ORDINARY)]
        at = now - timedelta(hours=50 - 3 * i)
        ingest(engine, mail(f"user{i}@corp{i}.test", f"User {i}", subject, body, at), source="file")
    start = now - timedelta(hours=2)
    host = "lb-eu-central-1.example-cloud.test"
    people = ["ann@alpha.test", "bo@beta.test", "cy@gamma.test", "di@delta.test", "ed@eps.test"]
    for n, sender in enumerate([*people, people[0]]):
        text = WORDING[n % len(WORDING)].format(host=host)
        raw = mail(
            sender,
            sender.split("@")[0].title() + " Smith",
            f"Outage {n}",
            text,
            start + timedelta(minutes=8 * n),
            LOG.format(host=host) if n % 2 else "",
        )
        ingest(engine, raw, source="file")
    run_until_idle([AnalysisRunner(config, engine)])
    return config, now


def test_outage_becomes_one_notice_per_customer_then_a_resolved_update(
    engine: Engine, outage: tuple[Config, datetime]
) -> None:
    config, now = outage
    fresh, _, declared = candidates(engine, now=now, hours=72)
    assert declared == []
    assert len(fresh) == 1, [c.describe() for c in fresh]
    cand = fresh[0]
    assert len(cand.customers) == 5 and len(cand.ticket_ids) == 6
    assert ("ERROR_CODE", "e_upstream_unavailable") in cand.keys
    # The candidate spans the customers' own time, not the import minute.
    assert timedelta(minutes=35) <= cand.end - cand.start <= timedelta(minutes=45)

    iid = ops.declare(
        engine,
        title="EU load balancer",
        actor="ops-ana",
        ticket_ids=cand.ticket_ids,
        keys=cand.keys,
        started_at=cand.start,
    )
    nid = nt.save_notice(engine, iid, body=DEFAULT_BODY, actor="ops-ana", status="identified")
    with Session(engine) as session:
        previews = nt.preview(session, nid)
    assert sorted(m.address for m in previews) == sorted(
        ["ann@alpha.test", "bo@beta.test", "cy@gamma.test", "di@delta.test", "ed@eps.test"]
    )
    ann = next(m for m in previews if m.address == "ann@alpha.test")
    assert len(ann.answers) == 2 and ann.body.startswith("Hi Ann,")
    assert all(f"[#{t}]" in ann.body for t in ann.answers)
    assert not any(m.problems for m in previews)

    with pytest.raises(ConfirmationMismatch):
        nt.release_notice(
            engine, nid, actor="ops-ana", confirm_count=6, from_address=config.sender.from_address
        )
    sent = nt.release_notice(
        engine, nid, actor="ops-ana", confirm_count=5, from_address=config.sender.from_address
    )
    with pytest.raises(ReviewError):
        nt.release_notice(
            engine, nid, actor="ops-ana", confirm_count=5, from_address=config.sender.from_address
        )
    with Session(engine) as session:
        rows = session.exec(select(Outbox).where(col(Outbox.id).in_(sent))).all()
        assert sorted(r.to_addrs[0] for r in rows) == sorted(m.address for m in previews)
        ann_row = next(r for r in rows if r.to_addrs == ["ann@alpha.test"])
        latest = session.exec(select(Message).where(Message.ticket_id == ann_row.ticket_id)).first()
        assert latest is not None and ann_row.in_reply_to == latest.message_id
        assert f"[#{ann_row.ticket_id}]" in ann_row.subject
        open_drafts = session.exec(
            select(Draft).where(
                col(Draft.ticket_id).in_(cand.ticket_ids), Draft.state == DraftState.DRAFTED
            )
        ).all()
        assert open_drafts == []  # every ticket of every customer is answered

    # A new customer hits the same failure: attached on arrival, drafted with the notice.
    late = mail(
        "fay@zeta.test",
        "Fay Jones",
        "Errors",
        WORDING[0].format(host="lb-eu-central-1.example-cloud.test"),
        now - timedelta(minutes=5),
    )
    pk = ingest(engine, late, source="file").message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        draft = session.exec(select(Draft).where(Draft.message_pk == pk)).one()
        view = ops.incident_view(session, iid)
    assert draft.article_id == f"incident:{iid}" and draft.body.startswith("Hi Fay,")
    assert "We are aware" in draft.body
    joined = next(t for t in view.tickets if t.ticket_id == draft.ticket_id)
    assert joined.attached_by == "pipeline" and "e_upstream_unavailable" in joined.reason

    # Resolved: the update goes to the five who were told, and the newcomer.
    ops.set_status(engine, iid, "resolved", actor="ops-ana")
    nid2 = nt.save_notice(
        engine,
        iid,
        body="Hi {first_name|there}, it is fixed ({tickets}).",
        actor="ops-ana",
        status="resolved",
    )
    with Session(engine) as session:
        second = nt.preview(session, nid2)
    assert {m.address for m in second} == {m.address for m in previews} | {"fay@zeta.test"}
    nt.release_notice(
        engine, nid2, actor="ops-bo", confirm_count=6, from_address=config.sender.from_address
    )
    with Session(engine) as session:
        deliveries = session.exec(select(IncidentDelivery)).all()
    assert len(deliveries) == 11
    assert len({(d.notice_id, d.address) for d in deliveries}) == 11


def test_ordinary_traffic_is_no_incident(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    now = utcnow()
    for i in range(24):
        subject, body = ORDINARY[i % len(ORDINARY)]
        body += " We also saw a 401 once." if i % 3 == 0 else ""
        at = now - timedelta(hours=60 - 2.5 * i)
        ingest(engine, mail(f"u{i}@c{i}.test", f"U {i}", subject, body, at), source="file")
    run_until_idle([AnalysisRunner(config, engine)])
    fresh, _, _ = candidates(engine, now=now, hours=72)
    assert fresh == []


def test_unknown_placeholder_and_missing_value_are_refused(
    engine: Engine, outage: tuple[Config, datetime]
) -> None:
    config, now = outage
    cand = candidates(engine, now=now, hours=72)[0][0]
    iid = ops.declare(engine, title="x", actor="ops", ticket_ids=cand.ticket_ids)
    with pytest.raises(ReviewError, match="unknown placeholder"):
        nt.save_notice(engine, iid, body="Hi {nmae}", actor="ops", status="investigating")
    nid = nt.save_notice(
        engine, iid, body="Affected: {regions}", actor="ops", status="investigating"
    )
    with Session(engine) as session:
        assert all(m.problems for m in nt.preview(session, nid))
    with pytest.raises(ReviewError, match="fallback"):
        nt.release_notice(
            engine, nid, actor="ops", confirm_count=5, from_address=config.sender.from_address
        )
