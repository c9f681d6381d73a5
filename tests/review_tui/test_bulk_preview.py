"""The bulk review groups tagged replies by the customer they go to.

A rep must see at a glance when one customer is about to get several replies: the
screen has one block per recipient with the count of messages to them, a message
expands to its full body, and the typed count still guards the release.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from textual.pilot import Pilot

from review_tui.app import ReviewApp
from review_tui.screens.bulk import BulkReviewScreen
from review_tui.screens.queue import QueueScreen
from review_tui.widgets.bulk_groups import BulkGroups, group_by_recipient
from storage.review import BulkCandidate
from storage.seed import FIXED_NOW, SeedResult, add_ticket
from tests.review_tui.conftest import settle
from tests.review_tui.test_app import AppFactory, outbox, screen_text, text_of

LAST_LINE = "PS: the invoice number is INV-7731, on the sixth line."
LONG_REPLY = "Hello Ada,\n\nline three\nline four\nline five\n" + LAST_LINE


def add_customer_mail(db: Engine) -> tuple[list[int], int]:
    """Three replies to ada (one with a long body) and one to bob, at customer.example."""
    ada = []
    for i in range(3):
        _, draft_id = add_ticket(
            db,
            sender="ada@customer.example",
            subject=f"Ada question {i + 1}",
            body="Hi, a question.",
            received_at=FIXED_NOW + timedelta(minutes=i + 1),
            reply=LONG_REPLY if i == 1 else "Hello Ada,\n\nanswered.\n\nBest regards",
        )
        ada.append(draft_id)
    _, bob = add_ticket(
        db,
        sender="Bob@Customer.example",
        subject="Bob question",
        body="Hi.",
        received_at=FIXED_NOW + timedelta(minutes=9),
    )
    return ada, bob


async def open_bulk(pilot: Pilot[Any], app: ReviewApp) -> BulkReviewScreen:
    await settle(pilot)
    await pilot.press("T", *"domain:customer.example", "enter")
    await settle(pilot)
    await pilot.press("R")
    await settle(pilot)
    assert isinstance(app.screen, BulkReviewScreen)
    return app.screen


async def test_grouped_by_recipient_with_counts_and_expandable_bodies(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    ada, _bob = add_customer_mail(db)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        bulk = await open_bulk(pilot, app)
        shown = screen_text(app)
        assert "ada@customer.example — 3 messages" in shown
        assert "Bob@Customer.example — 1 message" in shown
        assert shown.index("ada@customer.example — 3") < shown.index("Ada question 1")
        for subject in ("Ada question 1", "Ada question 2", "Ada question 3", "Bob question"):
            assert subject in shown
        assert "will be released to 2 recipients" in text_of(app, "#bulk-summary")
        assert LAST_LINE not in shown  # collapsed: subjects only

        groups = bulk.query_one(BulkGroups)
        await pilot.press("down")  # from the count field into the list
        assert groups.has_focus
        for _ in range(10):
            option = groups.highlighted_option
            if option is not None and option.id == str(ada[1]):
                break
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert LAST_LINE in screen_text(app)
        assert groups.expanded == {ada[1]}
        await pilot.press("space")
        await settle(pilot)
        assert LAST_LINE not in screen_text(app) and groups.expanded == set()
        assert isinstance(app.screen, BulkReviewScreen) and outbox(db) == []


async def test_typed_count_still_required(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    ada, bob = add_customer_mail(db)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        bulk = await open_bulk(pilot, app)
        await pilot.press("down", "3")  # a digit typed in the list goes to the count field
        assert bulk.query_one("#bulk-confirm").has_focus
        await pilot.press("enter")  # 3, but 4 messages go out: nothing is released
        await settle(pilot)
        assert app.screen is bulk and "nothing was released" in text_of(app, "#bulk-error")
        assert outbox(db) == []
        await pilot.press("4", "enter")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
    assert sorted(r.draft_id or 0 for r in outbox(db)) == sorted([*ada, bob])


def candidate(draft_id: int, to: str, problems: tuple[str, ...] = ()) -> BulkCandidate:
    return BulkCandidate(
        draft_id=draft_id, ticket_id=draft_id, to_addr=to, subject="s", body="b", version=1,
        problems=problems,
    )  # fmt: skip


def test_groups_ignore_case_and_put_the_busiest_recipient_first() -> None:
    groups = group_by_recipient(
        [
            candidate(1, "x@a.example"),
            candidate(2, "ada@b.example"),
            candidate(3, "ADA@b.example", ("stale",)),
            candidate(4, "y@a.example"),
        ]
    )
    assert [(g.address, [m.draft_id for m in g.messages]) for g in groups] == [
        ("ada@b.example", [2, 3]),
        ("x@a.example", [1]),
        ("y@a.example", [4]),
    ]
    assert groups[0].excluded == 1
