"""`T` offers the current row's values as tag patterns, and a field to type one.

The queue's bucket column cuts failure signatures, so a rep could not read one to type
it: the dialog offers the row's intent, its whole signature, its sender domain and the
entity values of its draft, and picking one tags every matching row.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from review_tui.app import ReviewApp
from review_tui.query import pattern_choices
from review_tui.screens.dialogs import PickOrTypeScreen
from review_tui.screens.queue import QueueScreen
from review_tui.widgets.queue_table import QueueTable
from storage.db import session_scope
from storage.models import Draft, Ticket
from storage.seed import FIXED_NOW, SeedResult, add_ticket
from tests.review_tui.conftest import notes, settle
from tests.review_tui.test_app import AppFactory, screen_text, text_of

SIGNATURE = "PoolTimeoutError: no connection from pool 'primary' within 30000ms 8d76b6178f39"
HOST = "db-prod-07.acme.io"


def add_signature_tickets(db: Engine) -> list[int]:
    """Three drafts whose tickets share a long failure signature, and one that does not."""
    ids = []
    for i in range(4):
        _, draft_id = add_ticket(
            db,
            sender=f"ops{i}@acme.io",
            subject=f"Pool timeouts {i}",
            body=f"Our service on {HOST} times out.",
            received_at=FIXED_NOW + timedelta(minutes=i + 1),
            entities=[{"label": "HOSTNAME", "text": HOST, "start": 15, "end": 33}],
        )
        ids.append(draft_id)
    with session_scope(db) as session:
        for draft_id in ids[:3]:
            found = session.get(Draft, draft_id)
            assert found is not None
            ticket = session.get(Ticket, found.ticket_id)
            assert ticket is not None
            ticket.signature = SIGNATURE
            session.add(ticket)
    return ids


async def open_dialog(pilot: Pilot[Any], app: ReviewApp, draft_id: int) -> PickOrTypeScreen:
    await settle(pilot)
    queue = app.screen
    assert isinstance(queue, QueueScreen)
    table = queue.query_one(QueueTable)
    table.move_cursor(row=table.get_row_index(str(draft_id)))
    await pilot.press("T")
    await settle(pilot)
    dialog = app.screen
    assert isinstance(dialog, PickOrTypeScreen)
    return dialog


def offered(dialog: PickOrTypeScreen) -> list[str]:
    options = dialog.query_one(OptionList)
    return [options.get_option_at_index(i).id or "" for i in range(options.option_count)]


async def test_offers_the_rows_full_signature_and_tags_by_it(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    ids = add_signature_tickets(db)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        dialog = await open_dialog(pilot, app, ids[0])
        assert offered(dialog) == [
            "intent:bug_report",
            f"signature:{SIGNATURE}",
            "domain:acme.io",
            f"entity:{HOST}",  # read from the draft after the dialog opened
            "type-own",
        ]
        assert f"signature:{SIGNATURE}" in screen_text(app)  # whole, not cut
        await pilot.press("down", "enter")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        assert sorted(queue.tagged) == ids[:3]
        assert any("3 more tagged (3 match)" in n for n in notes(app))


async def test_entity_and_typed_patterns(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    ids = add_signature_tickets(db)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        dialog = await open_dialog(pilot, app, ids[3])
        assert "signature:" not in " ".join(offered(dialog))  # this row has none
        await pilot.press("down", "down", "enter")  # entity:<host>
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen) and sorted(queue.tagged) == ids

        await pilot.press("u")
        dialog = await open_dialog(pilot, app, ids[3])
        await pilot.press(*"colour:red", "enter")  # typing starts from the list
        await settle(pilot)
        assert app.screen is dialog and "field one of" in text_of(app, "#pick-error")
        await pilot.press("ctrl+u", *"signature:", *SIGNATURE, "enter")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen) and sorted(app.screen.tagged) == ids[:3]

        dialog = await open_dialog(pilot, app, ids[3])
        await pilot.press("x", "up")  # up goes back to the list, keeping what was typed
        assert dialog.query_one(OptionList).has_focus
        assert dialog.query_one(Input).value == "x"
        await pilot.press("escape")
        assert isinstance(app.screen, QueueScreen) and sorted(app.screen.tagged) == ids[:3]


def test_pattern_choices_from_a_row() -> None:
    found = pattern_choices(
        intent="billing",
        signature=" sig-x ",
        sender="Ada@ACME.io",
        entities=[{"text": "db-1", "label": "HOSTNAME"}, {"text": "DB-1"}, {"text": " "}],
    )
    assert found == [
        ("intent:billing", "intent"),
        ("signature:sig-x", "failure signature"),
        ("domain:acme.io", "sender domain"),
        ("entity:db-1", "hostname"),
    ]
    assert pattern_choices(intent=None, signature=None, sender="") == []
