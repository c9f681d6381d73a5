"""Ops turn an outage into one incident and answer every customer with one reviewed notice.

A real SQLite file holds a week of unrelated mail and, in the last hour, six tickets
from five customers naming the same failing load balancer and log signature (one
customer wrote twice). From the queue a rep opens the incidents, declares the
candidate, writes and previews the update and releases it with the typed count: one
outbox row per customer, none extra for the second ticket. The key presses on that path
are counted. Customer text stays literal on every screen.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from review_tui.screens.dialogs import ConfirmScreen, PromptScreen
from review_tui.screens.incident import IncidentScreen
from review_tui.screens.incidents import IncidentsScreen
from review_tui.screens.notice import NoticeEditorScreen, NoticePreviewScreen
from review_tui.screens.queue import QueueScreen
from review_tui.widgets.incident_list import IncidentList
from storage.db import session_scope
from storage.incidents.personal import DEFAULT_BODY
from storage.incidents.tables import Incident, IncidentNotice, IncidentTicket
from storage.models import AnalysisRecord, Draft, Outbox, Ticket
from storage.seed import add_ticket
from tests.review_tui.conftest import APP_NOW, notes, settle
from tests.review_tui.test_app import AppFactory, screen_text, text_of

HOST = "lb-eu-central-1.example.net"
SIGNATURE = "UpstreamTimeout: upstream <*> did not answer within <*>ms"
CUSTOMERS = (
    ("ada@acme.io", "Ada Lovelace"),
    ("bob@globex.test", "Bob Builder"),
    ("cy@initech.test", "Cy Young"),
    ("di@umbrella.test", "Di Prince"),
    ("ed@hooli.test", "Ed Stone"),
)
HOSTILE_SUBJECT = "Checkout [bold]x[/] down \x1b[31m"


def add_mail(
    db: Engine,
    *,
    sender: str,
    subject: str,
    minutes_ago: float,
    name: str = "",
    intent: str = "outage_report",
    entities: tuple[tuple[str, str], ...] = (),
    signature: str | None = None,
) -> tuple[int, int]:
    """A ticket, its customer mail, a draft and what analysis found; (ticket, draft)."""
    found = [{"label": label, "text": text} for label, text in entities]
    ticket_id, draft_id = add_ticket(
        db,
        sender=sender,
        name=name,
        subject=subject,
        body=f"Hello, {subject.lower()}.",
        received_at=APP_NOW - timedelta(minutes=minutes_ago),
        intent=intent,
        entities=found,
    )
    with session_scope(db) as session:
        draft = session.get(Draft, draft_id)
        ticket = session.get(Ticket, ticket_id)
        assert draft is not None and ticket is not None
        findings = [{"signature": signature}] if signature else []
        session.add(
            AnalysisRecord(
                message_pk=draft.message_pk,
                model_version="test",
                intent=intent,
                confidence=0.9,
                entities=found,
                log_findings=findings,
            )
        )
        ticket.signature = signature
        session.add(ticket)
    return ticket_id, draft_id


def add_ordinary_week(db: Engine, count: int = 30) -> None:
    """Unrelated mail every five hours over the last week: each names its own host."""
    for i in range(count):
        add_mail(
            db,
            sender=f"user{i}@company{i}.test",
            subject=f"Question {i} about invoices",
            minutes_ago=60 * (5 * i + 3),
            intent=("billing", "config_help", "feature_request")[i % 3],
            entities=((("HOSTNAME", f"app-{i}.company{i}.test")),),
        )


def add_outage(db: Engine, *, subject: str = "Checkout is down") -> dict[str, list[int]]:
    """Six tickets in 40 minutes from five customers; ada writes two. address → drafts."""
    drafts: dict[str, list[int]] = {}
    writers = [*CUSTOMERS, CUSTOMERS[0]]
    for k, (address, name) in enumerate(writers):
        _, draft_id = add_mail(
            db,
            sender=address,
            name=name,
            subject=subject if k == 1 else f"Checkout is down ({k})",
            minutes_ago=50 - 8 * k,
            entities=(("HOSTNAME", HOST), ("HTTP_STATUS", "504")),
            signature=SIGNATURE,
        )
        drafts.setdefault(address, []).append(draft_id)
    return drafts


class Keys:
    """Presses keys and counts them; waits for the database workers after each key (a
    key pressed while a save is still closing its editor would be typed into it)."""

    def __init__(self, pilot: Pilot[Any]) -> None:
        self.pilot = pilot
        self.count = 0

    async def press(self, *keys: str) -> None:
        for key in keys:
            self.count += 1
            await self.pilot.press(key)
            await settle(self.pilot)


def pending_outbox(db: Engine) -> list[Outbox]:
    with Session(db) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


async def test_declare_write_preview_release_then_resolve(db: Engine, make_app: AppFactory) -> None:
    add_ordinary_week(db)
    drafts = add_outage(db)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        keys = Keys(pilot)
        await keys.press("I")
        listing = app.screen
        assert isinstance(listing, IncidentsScreen)
        (candidate,) = listing.query_one(IncidentList).board.candidates
        assert len(candidate.customers) == 5 and len(candidate.ticket_ids) == 6
        shown = screen_text(app)
        assert "5 customers, 6 tickets" in shown and f"HOSTNAME={HOST} (6 tickets)" in shown

        await keys.press("d")  # the title is prefilled from the evidence
        dialog = app.screen
        assert isinstance(dialog, PromptScreen)
        assert HOST in dialog.query_one(Input).value
        await keys.press("enter")
        screen = app.screen
        assert isinstance(screen, IncidentScreen) and screen.detail is not None
        assert len(screen.query_one(DataTable).rows) == 6

        await keys.press("n")
        editor = app.screen
        assert isinstance(editor, NoticeEditorScreen) and editor.start == DEFAULT_BODY
        await keys.press("ctrl+s")
        assert app.screen is screen and app.focused is screen.query_one(DataTable)

        await keys.press("p")
        preview = app.screen
        assert isinstance(preview, NoticePreviewScreen)
        assert sorted(m.address for m in preview.messages) == sorted(a for a, _ in CUSTOMERS)
        ada = next(m for m in preview.messages if m.address == "ada@acme.io")
        assert len(ada.answers) == 2 and ada.body.startswith("Hi Ada,")
        assert "To: bob@globex.test" in screen_text(app)

        await keys.press("R", "5", "enter")
        assert app.screen is screen
        first = pending_outbox(db)
        assert keys.count <= 15, keys.count  # I, d, enter, n, ctrl+s, p, R, 5, enter = 9
        assert keys.count == 9

        keys.count = 0
        await keys.press("s", "s", "s")  # identified, monitoring, resolved
        with Session(db) as session:
            assert session.exec(select(Incident.status)).one() == "resolved"
        await keys.press("n")
        editor = app.screen
        assert isinstance(editor, NoticeEditorScreen)
        assert editor.status == "resolved" and editor.start == DEFAULT_BODY  # the last update
        await keys.press("ctrl+s", "R", "5", "enter")
        assert keys.count == 8
        assert any("released the resolved update to 5 customers" in n for n in notes(app))
    everyone = sorted(a for a, _ in CUSTOMERS)
    assert sorted(r.to_addrs[0] for r in first) == everyone  # ada once, for both tickets
    rows = pending_outbox(db)
    second = rows[len(first) :]
    assert sorted(r.to_addrs[0] for r in second) == everyone
    assert {r.released_by for r in rows} == {"alice"}
    with Session(db) as session:
        notices = session.exec(select(IncidentNotice).order_by(col(IncidentNotice.id))).all()
        assert [(n.status, n.recipients, n.released_by) for n in notices] == [
            ("investigating", 5, "alice"),
            ("resolved", 5, "alice"),
        ]
        answered = session.exec(select(Draft).where(col(Draft.id).in_(drafts["ada@acme.io"])))
        assert {d.state for d in answered} == {"superseded"}


async def test_customer_text_stays_literal_and_guards_hold(
    db: Engine, make_app: AppFactory
) -> None:
    add_ordinary_week(db)
    drafts = add_outage(db, subject=HOSTILE_SUBJECT)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("I", "d", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        shown = screen_text(app)
        assert "Checkout [bold]x[/] down ␛[31m" in shown  # markup and the escape, literally

        await pilot.press("t")  # every open draft of the incident, tagged in the queue
        await settle(pilot)
        queue = next(s for s in app.screen_stack if isinstance(s, QueueScreen))
        assert queue.tagged == {d for ids in drafts.values() for d in ids}

        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, NoticeEditorScreen)
        await pilot.press(*"{colour}", "ctrl+s")  # refused: it stays open, says why
        await settle(pilot)
        assert isinstance(app.screen, NoticeEditorScreen)
        assert "unknown placeholder" in text_of(app, "#notice-error")
        await pilot.press("escape", "y")
        await settle(pilot)
        assert app.screen is screen

        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, NoticeEditorScreen)
        await pilot.press("ctrl+s")
        await settle(pilot)  # saved and closed: a key pressed sooner would be typed in it
        assert app.screen is screen
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, NoticePreviewScreen)
        assert "Re: Checkout [bold]x[/] down ␛[31m" in screen_text(app)
        await pilot.press("escape", "R", "4", "enter")  # the wrong count
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        assert "typed 4, but the update goes to 5 customers" in text_of(app, "#prompt-error")
        assert pending_outbox(db) == []
        await pilot.press("escape")

        # A sixth customer with the same failure: suggested, then attached with `a`.
        late, _ = add_mail(db, sender="fay@stark.test", subject="502s", minutes_ago=2,
                           entities=(("HOSTNAME", HOST),), signature=SIGNATURE)  # fmt: skip
        screen.load()
        await settle(pilot)
        assert "1 new ticket looks like this incident" in screen_text(app)
        await pilot.press("a")
        await settle(pilot)
        assert screen.detail is not None and not screen.detail.suggested
        assert late in {t.ticket_id for t in screen.detail.view.tickets}

        await pilot.press("x")  # the first ticket, after a confirmation
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
    with Session(db) as session:
        attached = session.exec(select(IncidentTicket.ticket_id)).all()
    assert len(attached) == 6 and late in attached


async def test_ordinary_traffic_shows_no_candidate(db: Engine, make_app: AppFactory) -> None:
    add_ordinary_week(db)
    for i in range(4):  # a handful more today, each about something else
        add_mail(
            db,
            sender=f"today{i}@shop{i}.test",
            subject=f"How do I {i}",
            minutes_ago=20 + 10 * i,
            intent="config_help",
            entities=(("HOSTNAME", f"web-{i}.shop{i}.test"),),
        )
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("I")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, IncidentsScreen)
        assert screen.query_one(IncidentList).board.candidates == ()
        assert "no undeclared candidates" in screen_text(app)
        await pilot.press("d")
        await settle(pilot)
        assert any("d declares a candidate" in n for n in notes(app))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)


async def test_metric_spikes_beside_a_candidate_are_listed(
    db: Engine, make_app: AppFactory
) -> None:
    """The gateway hands the UI a reader of metric spikes; the UI asks it about the spans
    it shows and lists what overlaps (Prometheus itself: tests/gateway/metrics)."""
    add_ordinary_week(db)
    add_outage(db)
    asked: list[list[tuple[str, Any, Any]]] = []

    def beside(spans: list[tuple[str, Any, Any]]) -> list[tuple[str, str]]:
        asked.append(spans)
        return [("latency: 480 from Fri 14:10 [bold]x[/] — beside candidate", "▁▁▅█▇▂")]

    app = make_app(metrics_beside=beside)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("I")
        await settle(pilot)
        text = screen_text(app)
        assert "Metric spikes beside them" in text
        assert "latency: 480 from Fri 14:10 [bold]x[/]" in text and "▁▁▅█▇▂" in text
        ((what, start, end),) = asked[-1]
        assert what.startswith("candidate ") and start <= end
