"""The co-pilot brief shows above the draft: decision, flags, asks, log line, missing.

Customer text in the brief is shown as plain text, never as markup.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from review_tui.widgets.brief import brief_text
from review_tui.widgets.queue_table import QueueTable
from storage.models import Draft
from storage.seed import SeedResult
from tests.review_tui.conftest import settle
from tests.review_tui.test_app import AppFactory, open_draft, text_of

BRIEF = {
    "decision": "security report: no article with a security variant; escalate by hand",
    "flags": ["security: leaked", "urgent: asap", "not English: es"],
    "asks": ["¿Pueden revocar el token [bold]ya[/bold]?"],
    "log": {
        "attachment": "audit.log",
        "line_no": 12,
        "text": "WARN login from 203.0.113.9",
        "level": "warning",
        "means": "",
    },
    "missing": ["account_id"],
    "passages": [{"id": "leak", "title": "Leaked token", "score": 7.5, "kind": "article"}],
}


def test_brief_text_renders_every_part_as_plain_text() -> None:
    text = brief_text(BRIEF).plain
    assert "escalate by hand" in text
    assert "security: leaked · urgent: asap · not English: es" in text
    assert "? ¿Pueden revocar el token [bold]ya[/bold]?" in text  # markup kept literal
    assert "log audit.log:12 WARN login from 203.0.113.9" in text
    assert "missing: account_id" in text and "Leaked token 7.5" in text
    assert "none recorded" in brief_text(None).plain


async def test_ticket_screen_shows_the_brief_above_the_draft(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    with Session(db) as session:
        row = session.get(Draft, draft_id)
        assert row is not None
        row.evidence = {**(row.evidence or {}), "brief": BRIEF}
        session.add(row)
        session.commit()
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        shown = text_of(app, "#draft-brief")
        assert "escalate by hand" in shown and "missing: account_id" in shown
        assert "[bold]ya[/bold]" in shown


async def test_queue_marks_urgent_security_and_foreign_language_tickets(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    with Session(db) as session:
        row = session.get(Draft, draft_id)
        assert row is not None
        row.evidence = {
            **(row.evidence or {}),
            "brief": {**BRIEF, "urgent": True, "language": "es"},
        }
        session.add(row)
        session.commit()
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(QueueTable)
        marked = table.get_cell(str(draft_id), "flags").plain
        assert marked == "!Ses"
        other = table.get_cell(str(seeded.draft_ids[1]), "flags").plain
        assert other == ""
