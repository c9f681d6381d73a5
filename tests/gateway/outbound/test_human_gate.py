"""The human gate: no mail reaches the relay without a human release record.

Two halves. Dynamically, mail walks the real path (ingest → pipeline → drafts → sender
against a real relay sink) and nothing is sent until a named rep releases it; a row
without a release record is refused by the sender. Statically, the source is scanned so
that the dynamic walk cannot be side-stepped: only the release code creates sendable
outbox rows, and only the sender talks SMTP to a relay.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.outbound.sender import SenderRunner
from gateway.runner import Runner, run_until_idle
from storage.db import session_scope
from storage.models import AuditLog, Draft, Outbox, OutboxState
from storage.review import ReviewError, release
from tests.support.relay import SinkHandler, rep_releases, running_sink, sender_config

REPO = Path(__file__).resolve().parents[3]
SCREENING = REPO / "tests" / "fixtures" / "screening"
PACKAGES = ("gateway", "nlp", "storage", "review_tui")


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with running_sink() as started:
        yield started


def outbox_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Outbox)).one())


def test_analysis_alone_never_reaches_the_relay(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    for path in sorted(SCREENING.glob("*.eml")):
        ingest(engine, path.read_bytes(), source="test")
    runners: list[Runner] = [AnalysisRunner(config, engine), SenderRunner(config, engine)]
    run_until_idle(runners)
    with Session(engine) as session:
        drafts = session.exec(select(Draft)).all()
    assert drafts, "customer mail was drafted"
    assert outbox_count(engine) == 0
    assert handler.messages == []

    # One named release → exactly one delivery, carrying who released it and when.
    outbox_id = rep_releases(engine, int(drafts[0].id or 0), actor="Rita Rep")
    run_until_idle(runners)
    assert len(handler.messages) == 1
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None and row.state == OutboxState.SENT
        assert row.released_by == "Rita Rep" and row.released_at is not None
        released = session.exec(select(AuditLog).where(AuditLog.action == "draft.released")).one()
        assert released.actor == "Rita Rep" and released.entity_id == drafts[0].id


def test_release_needs_a_named_rep(engine: Engine, make_config: Callable[..., Config]) -> None:
    config = make_config()
    ingest(engine, (SCREENING / "customer_ordinary.eml").read_bytes(), source="test")
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        draft = session.exec(select(Draft)).one()
    with pytest.raises(ReviewError, match="named rep"):
        release(engine=engine, draft_ids=[int(draft.id or 0)], actor=" ", from_address="s@x")
    assert outbox_count(engine) == 0


def test_sender_refuses_a_row_without_a_release_record(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    with session_scope(engine) as session:
        row = Outbox(
            message_id="<sg-forged@example.com>",
            to_addrs=["victim@customer.example"],
            subject="forged",
            body="nobody released this",
            released_by="",
        )
        session.add(row)
        session.flush()
        row_id = int(row.id or 0)
    assert SenderRunner(config, engine).run_once() == 1
    assert handler.messages == []
    with Session(engine) as session:
        stored = session.get(Outbox, row_id)
        assert stored is not None and stored.state == OutboxState.FAILED
        assert stored.last_error == "no human release record; not sent"


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def test_only_the_release_creates_sendable_outbox_rows() -> None:
    """Outbox(...) outside the two human releases — a rep's drafts (storage/review) and
    an incident notice (storage/incidents/notice.py) — may only build non-pending rows."""
    offenders = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) == "Outbox"):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            if rel in ("storage/review/__init__.py", "storage/incidents/notice.py"):
                assert "released_by" in keywords and "released_at" in keywords
                continue
            state = keywords.get("state")
            if state is None or _name(state) in ("PENDING", "SENDING"):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_only_release_retry_and_sender_set_outbox_pending() -> None:
    users = {
        rel
        for rel, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "PENDING"
        and _name(node.value) == "OutboxState"
    }
    # models.py: the column default (hence the explicit-state rule above); review.py:
    # release and a rep's explicit retry; notice.py: an incident notice's release;
    # sender.py: claim, and retry after a 4xx.
    assert users <= {
        "storage/models.py",
        "storage/review/__init__.py",
        "storage/incidents/notice.py",
        "gateway/outbound/sender.py",
    }


def test_only_the_sender_talks_smtp_to_a_relay() -> None:
    users = set()
    relay_importers = set()
    for rel, tree in _sources():
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("smtplib", "aiosmtplib") for n in names):
                users.add(rel)
            if isinstance(node, ast.ImportFrom):
                # Relative imports resolved against the file's package; `from gateway
                # import relay` names the module among the imported names.
                package = rel.split("/")[: -node.level] if node.level else []
                base = ".".join([*package, *([node.module] if node.module else [])])
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            if "gateway.outbound.relay" in names:
                relay_importers.add(rel)
    # demo.py is a client of our own SMTP front door on 127.0.0.1, never of a relay.
    # relay.py is the sender's SMTP client side, split out of sender.py.
    assert users <= {
        "gateway/outbound/sender.py",
        "gateway/outbound/relay.py",
        "gateway/cli/demo.py",
    }
    assert "gateway/outbound/relay.py" in users
    # ...and only the sender uses it, so nothing else reaches a relay through it.
    assert relay_importers == {"gateway/outbound/sender.py"}
