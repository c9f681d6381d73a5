"""Tag patterns combine: alternatives (`a|b`), negation (`-x`) and terms that must all hold.

Five drafts differ in intent, signature, entity and sender domain; each pattern must
tag exactly the drafts it describes, including drafts with no signature (a negated
signature matches them) and an entity that merely contains the wanted text (no match).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import review as rv
from storage.db import session_scope
from storage.models import Ticket
from storage.review.patterns import PatternTerm, TagPattern
from storage.seed import FIXED_NOW, add_ticket

LB = "lb-eu-central-1"
ROWS = {  # name: (sender, intent, signature, entity)
    "d1": ("ops@acme.io", "outage_report", "sig-a", LB),
    "d2": ("it@globex.test", "billing", "sig-b", LB),
    "d3": ("dev@acme.io", "outage_report", "sig-b", "db-1"),
    "d4": ("sre@initech.test", "config_help", None, f"{LB}-old"),  # contains LB, is not LB
    "d5": ("pay@umbrella.test", "billing", None, None),
}


@pytest.fixture
def drafts(engine: Engine) -> dict[str, int]:
    ids = {}
    for i, (name, (sender, intent, signature, entity)) in enumerate(ROWS.items()):
        ticket_id, draft_id = add_ticket(
            engine,
            sender=sender,
            subject=f"Mail {name}",
            body="Hello.",
            received_at=FIXED_NOW + timedelta(minutes=i),
            intent=intent,
            entities=[{"label": "HOSTNAME", "text": entity}] if entity else [],
        )
        with session_scope(engine) as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            ticket.signature = signature
            session.add(ticket)
        ids[name] = draft_id
    return ids


def term(field: str, value: str, negated: bool = False) -> PatternTerm:
    return PatternTerm(field, value, negated)


def tagged(engine: Engine, ids: dict[str, int], pattern: TagPattern, **flt: object) -> list[str]:
    with Session(engine) as session:
        found = rv.tag_by_pattern(session=session, pattern=pattern, flt=rv.QueueFilter(**flt))  # type: ignore[arg-type]
    names = {v: k for k, v in ids.items()}
    return sorted(names[i] for i in found)


def test_alternatives_negation_and_both(engine: Engine, drafts: dict[str, int]) -> None:
    either = ((term("signature", "sig-a"), term("signature", "sig-b")),)
    assert tagged(engine, drafts, either) == ["d1", "d2", "d3"]
    assert tagged(engine, drafts, ((term("intent", "billing", True),),)) == ["d1", "d3", "d4"]
    lb_not_billing = ((term("entity", LB),), (term("intent", "billing", True),))
    assert tagged(engine, drafts, lb_not_billing) == ["d1"]
    # Rows without the value count as "not": no signature, a longer host name.
    assert tagged(engine, drafts, ((term("signature", "sig-a", True),),)) == [
        "d2",
        "d3",
        "d4",
        "d5",
    ]
    assert tagged(engine, drafts, ((term("entity", LB.upper(), True),),)) == ["d3", "d4", "d5"]
    billing_or_elsewhere = ((term("intent", "billing"), term("sender_domain", "@acme.io", True)),)
    assert tagged(engine, drafts, billing_or_elsewhere) == ["d2", "d4", "d5"]


def test_the_queue_filter_still_applies(engine: Engine, drafts: dict[str, int]) -> None:
    either = ((term("signature", "sig-a"), term("signature", "sig-b")),)
    assert tagged(engine, drafts, either, intents=("outage_report",)) == ["d1", "d3"]


def test_single_terms_and_errors_as_before(engine: Engine, drafts: dict[str, int]) -> None:
    with Session(engine) as session:
        by_domain = rv.tag_by_pattern(session=session, field_name="sender_domain", value="ACME.io")
        assert sorted(by_domain) == sorted([drafts["d1"], drafts["d3"]])
        with pytest.raises(rv.ReviewError, match="cannot tag by 'colour'"):
            rv.tag_by_pattern(session=session, pattern=((term("colour", "red"),),))
        with pytest.raises(rv.ReviewError, match="needs a value"):
            rv.tag_by_pattern(
                session=session, pattern=((term("intent", "a"), term("entity", " ")),)
            )
        with pytest.raises(rv.ReviewError, match="needs a value"):
            rv.tag_by_pattern(session=session, pattern=())
