"""`T` takes combined patterns: `a|b` for either, `-x` for not, terms that must all hold.

The parser is pure; the Pilot test types a combined pattern into the queue's dialog and
checks which drafts the real database tags. A value offered by the dialog (a whole
log signature) is taken as one term even when it reads like `... domain:x`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from review_tui.query import describe_pattern, parse_tag_pattern
from review_tui.screens.queue import QueueScreen
from review_tui.widgets.queue_table import QueueTable
from storage.db import session_scope
from storage.models import Ticket
from storage.review.patterns import PatternTerm
from storage.seed import FIXED_NOW, add_ticket
from tests.review_tui.conftest import notes, settle
from tests.review_tui.test_app import AppFactory

ODD_SIGNATURE = "ResolveError: lookup failed domain:<*> after 3 tries"


def test_parse_combined_patterns() -> None:
    t = PatternTerm
    assert parse_tag_pattern("signature:a|signature:b") == (
        (t("signature", "a"), t("signature", "b")),
    )
    assert parse_tag_pattern("-intent:billing") == ((t("intent", "billing", True),),)
    assert parse_tag_pattern("entity:lb-eu-central-1 -intent:billing") == (
        (t("entity", "lb-eu-central-1"),),
        (t("intent", "billing", True),),
    )
    assert parse_tag_pattern("sig:Pool timeout: no conn | -domain:@acme.io  ENTITY:h") == (
        (t("signature", "Pool timeout: no conn"), t("sender_domain", "@acme.io", True)),
        (t("entity", "h"),),
    )
    # After a colon with a space, a known field name is part of the value.
    assert parse_tag_pattern("signature:resolve domain: <*>") == (
        (t("signature", "resolve domain: <*>"),),
    )
    pattern = parse_tag_pattern("domain:acme.io|-sig:x entity:y")
    assert describe_pattern(pattern) == "domain:acme.io|-signature:x entity:y"
    assert parse_tag_pattern(describe_pattern(pattern)) == pattern


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour:red", "field one of"),
        ("intent: ", "intent: needs a value"),
        ("intent:a|", "needs a value after |"),
        ("intent:a -entity:", "entity: needs a value"),
        ("", "field one of"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tag_pattern(text)


def add_drafts(db: Engine) -> dict[str, int]:
    """Four drafts: two signatures (one billing), an odd signature, and no signature."""
    rows = {
        "a": ("ops@acme.io", "outage_report", "sig-a"),
        "b_billing": ("it@globex.test", "billing", "sig-b"),
        "b": ("dev@initech.test", "outage_report", "sig-b"),
        "odd": ("sre@hooli.test", "bug_report", ODD_SIGNATURE),
    }
    ids = {}
    for i, (name, (sender, intent, signature)) in enumerate(rows.items()):
        ticket_id, draft_id = add_ticket(
            db,
            sender=sender,
            subject=f"Mail {name}",
            body="Hello.",
            received_at=FIXED_NOW + timedelta(minutes=i + 1),
            intent=intent,
        )
        with session_scope(db) as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            ticket.signature = signature
            session.add(ticket)
        ids[name] = draft_id
    return ids


async def test_typed_combined_pattern_tags_the_matching_drafts(
    db: Engine, make_app: AppFactory
) -> None:
    ids = add_drafts(db)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press(
            "T", "ctrl+u", *"signature:sig-a|signature:sig-b -intent:billing", "enter"
        )
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        assert queue.tagged == {ids["a"], ids["b"]}
        assert any(
            "signature:sig-a|signature:sig-b -intent:billing: 2 more tagged" in n
            for n in notes(app)
        )


async def test_an_offered_signature_is_one_term(db: Engine, make_app: AppFactory) -> None:
    ids = add_drafts(db)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        table = queue.query_one(QueueTable)
        table.move_cursor(row=table.get_row_index(str(ids["odd"])))
        await pilot.press("T")
        await settle(pilot)
        await pilot.press("down", "enter")  # intent, then the whole signature
        await settle(pilot)
        assert queue.tagged == {ids["odd"]}
        assert app.screen is queue
