"""The bulk limit counts a rep's releases over a sliding window, so 16 + 14 is 30; and
the rep is the logged-in account, whatever $USER says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.cli.review import os_account, rep_identity
from gateway.config import Config
from gateway.config.sections import ReviewConfig
from storage import review as rv
from storage.models import Draft, Outbox, utcnow
from storage.seed import add_ticket

FROM = "support@help.example.org"


def make_drafts(engine: Engine, count: int, start: int = 0) -> list[int]:
    ids = []
    for i in range(start, start + count):
        _, draft_id = add_ticket(
            engine,
            sender=f"customer{i}@corp{i}.example",
            subject=f"Question {i}",
            body="How do I rotate my API key?",
            received_at=utcnow() - timedelta(hours=2, seconds=i),
        )
        ids.append(draft_id)
    return ids


def bulk(engine: Engine, ids: list[int], actor: str, **kw: object) -> rv.ReleaseResult:
    return rv.release(engine=engine, draft_ids=ids, actor=actor, from_address=FROM, bulk=True,
                      confirm_count=len(ids), bulk_ops_threshold=20, **kw)  # type: ignore[arg-type]  # fmt: skip


def outbox_count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Outbox)).all())


def test_a_refused_batch_cannot_go_out_in_parts(engine: Engine) -> None:
    ids = make_drafts(engine, 30)
    with pytest.raises(rv.PermissionDenied, match="ops role"):
        bulk(engine, ids, "alice")
    now = utcnow()
    bulk(engine, ids[:16], "alice", now=now)
    with pytest.raises(rv.PermissionDenied, match="16 messages in bulk") as refused:
        bulk(engine, ids[16:], "alice", now=now + timedelta(seconds=40))
    assert "30" in str(refused.value) and outbox_count(engine) == 16
    with Session(engine) as session:  # nothing of the refused part moved
        assert all(session.get(Draft, i).state == "drafted" for i in ids[16:])  # type: ignore[union-attr]
    # Another rep has a window of her own, and the ops role is not limited.
    bulk(engine, ids[16:20], "bob", now=now)
    bulk(engine, ids[20:], "carol", now=now, ops_roles=["carol"])
    assert outbox_count(engine) == 30


def test_the_window_slides(engine: Engine) -> None:
    ids = make_drafts(engine, 30)
    start = utcnow() - timedelta(minutes=90)
    bulk(engine, ids[:16], "alice", now=start)
    # 61 minutes later the first 16 no longer count, with the default 60-minute window...
    bulk(engine, ids[16:28], "alice", now=start + timedelta(minutes=61))
    # ...but a wider window still sees them.
    with pytest.raises(rv.PermissionDenied):
        bulk(engine, ids[28:], "alice", now=start + timedelta(minutes=62),
             bulk_window_minutes=120)  # fmt: skip
    # Single releases are confirmed one by one and are not counted against bulk.
    rv.release(engine=engine, draft_ids=[ids[28]], actor="alice", from_address=FROM)
    assert outbox_count(engine) == 29


def test_the_rep_is_the_logged_in_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "ops-lead")
    me = os_account()
    assert rep_identity(Config()) == me  # $USER is not consulted
    assert rep_identity(Config(review=ReviewConfig(actor=me))) == me
    with pytest.raises(ValueError, match="not the account you are logged in as"):
        rep_identity(Config(review=ReviewConfig(actor="ops-lead")), account="dana", uid=1000)
    # root may name the rep (a shared terminal run by an administrator).
    assert rep_identity(Config(review=ReviewConfig(actor="ops-lead")), uid=0) == "ops-lead"


def test_config_knows_the_window(make_config: object) -> None:
    config = make_config(review={"bulk_window_minutes": 15})  # type: ignore[operator]
    assert config.review.bulk_window_minutes == 15
    assert Config().review.bulk_window_minutes == 60
