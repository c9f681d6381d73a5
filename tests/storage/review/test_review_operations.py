"""Review operations on a real SQLite file seeded with realistic tickets."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage import review as rv
from storage.db import session_scope
from storage.models import (
    AuditLog,
    Draft,
    DraftState,
    LabelCorrection,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    Ticket,
    utcnow,
)
from storage.seed import SeedResult, add_ticket, seed
from tests.support.postgres import pg_bindir

FROM = "support@help.example.org"


@pytest.fixture
def seeded(engine: Engine) -> SeedResult:
    return seed(engine, count=40)


def _draft(engine: Engine, draft_id: int) -> Draft:
    with Session(engine) as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        return draft


def _releasable(engine: Engine, seeded: SeedResult) -> list[int]:
    with Session(engine) as session:
        drafts = [session.get(Draft, i) for i in seeded.draft_ids]
        return [d.id for d in drafts if d and d.id and not rv.release_problems(d)]


def _outbox(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.state == "pending")).all())


def test_page_and_count_respect_filters_and_sort(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        everything = rv.count_queue(session=session)
        billing = rv.QueueFilter(intents=("billing",))
        page = rv.page_queue(session=session, flt=billing, limit=3)
        assert everything == 40
        assert [r.intent for r in page] == ["billing"] * 3
        assert rv.count_queue(session=session, flt=billing) == 5
        by_conf = rv.page_queue(
            session=session, flt=rv.QueueFilter(sort="confidence", descending=True), limit=40
        )
        confs = [r.confidence or 0.0 for r in by_conf]
        assert confs == sorted(confs, reverse=True)
        low = rv.QueueFilter(max_confidence=0.5)
        assert {r.state for r in rv.page_queue(session=session, flt=low)} <= {
            "needs_triage",
            "stale",
        }
        stale = rv.page_queue(session=session, flt=rv.QueueFilter(states=("stale",)))
        assert stale and {r.state for r in stale} == {"stale"}


def test_paging_returns_disjoint_pages(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        first = rv.page_queue(session=session, offset=0, limit=15)
        second = rv.page_queue(session=session, offset=15, limit=15)
        ages = [r.received_at for r in first + second]
    assert len(first) == len(second) == 15
    assert not {r.draft_id for r in first} & {r.draft_id for r in second}
    assert ages == sorted(ages)


def test_search_treats_wildcards_literally(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        hits = rv.page_queue(session=session, flt=rv.QueueFilter(search="nordlicht"))
        none = rv.count_queue(session=session, flt=rv.QueueFilter(search="%"))
    assert hits and all("nordlicht" in r.sender for r in hits)
    assert none == 0


def test_search_ignores_case_on_every_searched_column(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        lower = rv.count_queue(session=session, flt=rv.QueueFilter(search="nordlicht"))
        mixed = rv.count_queue(session=session, flt=rv.QueueFilter(search="NordLICHT"))
        row = rv.page_queue(session=session, limit=1)[0]
        by_subject = rv.page_queue(
            session=session, flt=rv.QueueFilter(search=row.subject.upper()), limit=500
        )
    assert lower == mixed > 0
    assert row.draft_id in {r.draft_id for r in by_subject}


def test_unknown_sort_is_a_clear_error(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session, pytest.raises(rv.ReviewError, match="cannot sort by"):
        rv.page_queue(session=session, flt=rv.QueueFilter(sort="colour"))


def test_tag_by_pattern_fields(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        by_intent = rv.tag_by_pattern(session=session, field_name="intent", value="outage_report")
        by_domain = rv.tag_by_pattern(
            session=session, field_name="sender_domain", value="@kanoo.ng"
        )
        perf = rv.QueueFilter(intents=("performance",))
        some = rv.page_queue(session=session, flt=perf, limit=1)[0]
        ticket = session.get(Ticket, some.ticket_id)
        draft = session.get(Draft, some.draft_id)
        assert ticket is not None and draft is not None
        host = draft.evidence["entities"][0]["text"]
        by_entity = rv.tag_by_pattern(session=session, field_name="entity", value=host.upper())
        drafts = {i: session.get(Draft, i) for i in by_intent + by_domain}
        with pytest.raises(rv.ReviewError, match="cannot tag by"):
            rv.tag_by_pattern(session=session, field_name="colour", value="x")
        with pytest.raises(rv.ReviewError, match="needs a value"):
            rv.tag_by_pattern(session=session, field_name="intent", value=" ")
    assert by_intent and all(drafts[i].intent == "outage_report" for i in by_intent)  # type: ignore[union-attr]
    assert by_domain and all(drafts[i].to_addr.endswith("@kanoo.ng") for i in by_domain)  # type: ignore[union-attr]
    assert some.draft_id in by_entity


def test_load_ticket_has_conversation_and_evidence(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        view = rv.load_ticket(session=session, draft_id=seeded.draft_ids[0])
        with pytest.raises(rv.ReviewError, match="does not exist"):
            rv.load_ticket(session=session, draft_id=999_999)
    assert view.conversation and view.conversation[0].text == view.body_text
    for ent in view.entities:
        assert view.body_text[ent["start"] : ent["end"]] == ent["text"]
    assert view.log_findings[0]["lines"][0]["line_no"] == 1412
    assert view.suggestions[0]["article_id"] == "incident-5xx"


def test_save_draft_detects_concurrent_edit(engine: Engine, seeded: SeedResult) -> None:
    draft_id = seeded.draft_ids[0]
    with session_scope(engine) as session:
        version = rv.save_draft(
            session=session, draft_id=draft_id, body="alice text", expected_version=1, actor="alice"
        )
    assert version == 2
    with session_scope(engine) as session, pytest.raises(rv.VersionConflict) as info:
        rv.save_draft(
            session=session, draft_id=draft_id, body="bob text", expected_version=1, actor="bob"
        )
    assert info.value.mine == "bob text"
    assert info.value.theirs == "alice text"
    assert info.value.updated_by == "alice"
    assert _draft(engine, draft_id).body == "alice text"


def test_saving_stale_draft_with_clear_stale_makes_it_releasable(
    engine: Engine, seeded: SeedResult
) -> None:
    stale_id = next(i for i in seeded.draft_ids if _draft(engine, i).state == "stale")
    with session_scope(engine) as session:
        rv.save_draft(
            session=session,
            draft_id=stale_id,
            body="Hello,\n\nupdated after your last mail.\n",
            expected_version=1,
            actor="alice",
            clear_stale=True,
        )
    assert _draft(engine, stale_id).state == DraftState.DRAFTED


def test_editing_out_placeholders_clears_unfilled(engine: Engine, seeded: SeedResult) -> None:
    draft_id = next(i for i in seeded.draft_ids if _draft(engine, i).unfilled)
    draft = _draft(engine, draft_id)
    assert "[[account_id?]]" in draft.body
    with session_scope(engine) as session:
        rv.save_draft(
            session=session,
            draft_id=draft_id,
            body=draft.body.replace("[[account_id?]]", "ACC-1234"),
            expected_version=draft.version,
            actor="alice",
        )
    assert _draft(engine, draft_id).unfilled == []


def test_release_one_writes_outbox_audit_and_states(engine: Engine, seeded: SeedResult) -> None:
    draft_id = _releasable(engine, seeded)[0]
    result = rv.release(engine=engine, draft_ids=[draft_id], actor="alice", from_address=FROM)
    with Session(engine) as session:
        row = session.get(Outbox, result.outbox_ids[0])
        draft = session.get(Draft, draft_id)
        assert row is not None and draft is not None
        message = session.get(Message, draft.message_pk)
        audits = session.exec(
            select(AuditLog).where(
                AuditLog.action == "draft.released", AuditLog.entity_id == draft_id
            )
        ).all()
    assert message is not None
    assert row.released_by == "alice" and row.bulk_id is None
    assert row.to_addrs == [draft.to_addr] and f"[#{draft.ticket_id}]" in row.subject
    assert row.message_id.startswith("<sg-") and row.message_id.endswith("@help.example.org>")
    assert row.in_reply_to == message.message_id
    assert row.references[-1] == message.message_id
    assert draft.state == DraftState.APPROVED and message.state == MessageState.APPROVED
    assert len(audits) == 1 and audits[0].actor == "alice"
    assert audits[0].details["recipient"] == draft.to_addr
    with pytest.raises(rv.ReviewError, match="already released by alice"):
        rv.release(engine=engine, draft_ids=[draft_id], actor="bob", from_address=FROM)
    assert len(_outbox(engine)) == 1


def test_release_adds_missing_ticket_token(engine: Engine, seeded: SeedResult) -> None:
    draft_id = _releasable(engine, seeded)[0]
    with session_scope(engine) as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        draft.subject = "Re: your cluster"
        session.add(draft)
    rv.release(engine=engine, draft_ids=[draft_id], actor="alice", from_address=FROM)
    assert _outbox(engine)[0].subject == f"Re: your cluster [#{_draft(engine, draft_id).ticket_id}]"


def test_release_refuses_stale_and_unfilled(engine: Engine, seeded: SeedResult) -> None:
    stale = next(i for i in seeded.draft_ids if _draft(engine, i).state == "stale")
    unfilled = next(
        i
        for i in seeded.draft_ids
        if _draft(engine, i).unfilled and _draft(engine, i).state != "stale"
    )
    with pytest.raises(rv.ReviewError, match="stale"):
        rv.release(engine=engine, draft_ids=[stale], actor="alice", from_address=FROM)
    with pytest.raises(rv.ReviewError, match="unfilled placeholders: account_id"):
        rv.release(engine=engine, draft_ids=[unfilled], actor="alice", from_address=FROM)
    assert _outbox(engine) == []


def test_bulk_release_needs_exact_count_and_is_atomic(engine: Engine, seeded: SeedResult) -> None:
    ids = _releasable(engine, seeded)[:5]
    stale = next(i for i in seeded.draft_ids if _draft(engine, i).state == "stale")
    with pytest.raises(rv.ConfirmationMismatch, match="nothing was released"):
        rv.release(
            engine=engine,
            draft_ids=ids,
            actor="alice",
            from_address=FROM,
            bulk=True,
            confirm_count=4,
        )
    with pytest.raises(rv.ReviewError, match="stale"):
        rv.release(
            engine=engine,
            draft_ids=[*ids, stale],
            actor="alice",
            from_address=FROM,
            bulk=True,
            confirm_count=6,
        )
    assert _outbox(engine) == []
    assert all(_draft(engine, i).state != "approved" for i in ids)
    result = rv.release(
        engine=engine, draft_ids=ids, actor="alice", from_address=FROM, bulk=True, confirm_count=5
    )
    rows = _outbox(engine)
    assert len(rows) == 5 and {r.bulk_id for r in rows} == {result.bulk_id}
    assert sorted(r.draft_id or 0 for r in rows) == sorted(ids)


def test_bulk_above_threshold_needs_ops(engine: Engine, seeded: SeedResult) -> None:
    ids = _releasable(engine, seeded)[:4]
    kwargs = {"bulk": True, "confirm_count": 4, "bulk_ops_threshold": 3, "from_address": FROM}
    with pytest.raises(rv.PermissionDenied, match="needs the ops role"):
        rv.release(engine=engine, draft_ids=ids, actor="alice", ops_roles=["carol"], **kwargs)  # type: ignore[arg-type]
    result = rv.release(engine=engine, draft_ids=ids, actor="carol", ops_roles=["carol"], **kwargs)  # type: ignore[arg-type]
    assert len(result.outbox_ids) == 4


def test_expected_version_stops_release_of_changed_draft(
    engine: Engine, seeded: SeedResult
) -> None:
    draft_id = _releasable(engine, seeded)[0]
    with session_scope(engine) as session:
        rv.save_draft(
            session=session, draft_id=draft_id, body="new", expected_version=1, actor="bob"
        )
    with pytest.raises(rv.ReviewError, match="changed since you reviewed it"):
        rv.release(
            engine=engine,
            draft_ids=[draft_id],
            actor="alice",
            from_address=FROM,
            expected_versions={draft_id: 1},
        )
    assert _outbox(engine) == []


def test_lease_blocks_other_rep_until_taken_over(engine: Engine, seeded: SeedResult) -> None:
    draft_id = _releasable(engine, seeded)[0]
    ticket_id = _draft(engine, draft_id).ticket_id
    mine = rv.acquire_lease(engine=engine, ticket_id=ticket_id, actor="alice", minutes=15)
    theirs = rv.acquire_lease(engine=engine, ticket_id=ticket_id, actor="bob", minutes=15)
    assert mine.mine and not theirs.mine and theirs.holder == "alice"
    with pytest.raises(rv.LeaseHeld, match="being worked on by alice"):
        rv.release(engine=engine, draft_ids=[draft_id], actor="bob", from_address=FROM)
    with pytest.raises(rv.LeaseHeld):
        rv.discard(engine=engine, draft_id=draft_id, actor="bob")
    assert not rv.release_lease(engine=engine, ticket_id=ticket_id, actor="bob")
    rv.take_over(engine=engine, ticket_id=ticket_id, actor="bob")
    rv.release(engine=engine, draft_ids=[draft_id], actor="bob", from_address=FROM)
    with Session(engine) as session:
        took = session.exec(select(AuditLog).where(AuditLog.action == "ticket.taken_over")).one()
    assert took.details == {"previous_holder": "alice"}
    assert _outbox(engine)[0].released_by == "bob"


def test_expired_lease_does_not_block(engine: Engine, seeded: SeedResult) -> None:
    ticket_id = _draft(engine, seeded.draft_ids[0]).ticket_id
    past = utcnow() - timedelta(hours=1)
    rv.acquire_lease(engine=engine, ticket_id=ticket_id, actor="alice", minutes=15, now=past)
    assert rv.acquire_lease(engine=engine, ticket_id=ticket_id, actor="bob").mine


def test_relabel_records_correction(engine: Engine, seeded: SeedResult) -> None:
    triage = next(i for i in seeded.draft_ids if _draft(engine, i).state == "needs_triage")
    rv.relabel(engine=engine, draft_id=triage, new_intent="config_help", actor="alice")
    with pytest.raises(rv.ReviewError, match="not a valid intent"):
        rv.relabel(engine=engine, draft_id=triage, new_intent="Drop Table", actor="alice")
    ticket_id = _draft(engine, triage).ticket_id
    with Session(engine) as session:
        corr = session.exec(select(LabelCorrection)).one()
        ticket = session.get(Ticket, ticket_id)
    assert (corr.old_label, corr.new_label, corr.actor) == ("needs_triage", "config_help", "alice")
    assert corr.text.startswith("hello, something is off")
    draft = _draft(engine, triage)
    assert draft.intent == "config_help" and draft.state == "drafted" and draft.version == 2
    assert ticket is not None and ticket.intent == "config_help"


def test_discard_keeps_message_and_audits(engine: Engine, seeded: SeedResult) -> None:
    draft_id = seeded.draft_ids[1]
    rv.discard(engine=engine, draft_id=draft_id, actor="alice", expected_version=1)
    draft = _draft(engine, draft_id)
    with Session(engine) as session:
        message = session.get(Message, draft.message_pk)
    assert draft.state == DraftState.DISCARDED
    assert message is not None and message.state == MessageState.SUPPRESSED
    with pytest.raises(rv.ReviewError, match="can no longer be changed"):
        rv.discard(engine=engine, draft_id=draft_id, actor="alice")


def test_choose_article_redrafts(engine: Engine, seeded: SeedResult) -> None:
    draft_id = seeded.draft_ids[0]
    with session_scope(engine) as session:
        rv.choose_article(
            session=session,
            draft_id=draft_id,
            article_id="feature-requests",
            body="Call us [[phone?]]",
            expected_version=1,
            actor="alice",
            unfilled=["phone"],
        )
        with pytest.raises(rv.ReviewError, match="not among"):
            rv.choose_article(
                session=session,
                draft_id=draft_id,
                article_id="kb-made-up",
                body="x",
                expected_version=2,
                actor="alice",
            )
    draft = _draft(engine, draft_id)
    assert (draft.article_id, draft.unfilled, draft.version) == ("feature-requests", ["phone"], 2)


def test_problems_listed_and_retried(engine: Engine, seeded: SeedResult) -> None:
    with Session(engine) as session:
        problems = rv.list_problems(session=session)
        assert rv.count_problems(session=session) == 3
    kinds = sorted(p.kind for p in problems)
    assert kinds == ["failed", "shunted", "shunted"]
    assert all(p.reason for p in problems)
    moved = rv.requeue_shunted(engine=engine, message_ids=seeded.shunted_message_ids, actor="a")
    retried = rv.retry_outbox(engine=engine, outbox_ids=seeded.failed_outbox_ids, actor="a")
    with Session(engine) as session:
        states = session.exec(
            select(Message.state).where(col(Message.id).in_(seeded.shunted_message_ids))
        ).all()
        out = session.get(Outbox, seeded.failed_outbox_ids[0])
        assert rv.count_problems(session=session) == 0
    assert (moved, retried) == (2, 1)
    assert set(states) == {MessageState.RECEIVED}
    assert out is not None and out.state == OutboxState.PENDING and out.attempts == 0


def test_read_engine_reads_while_a_writer_holds_the_lock(
    engine: Engine, seeded: SeedResult, db_path: Path
) -> None:
    reader = rv.read_engine(f"sqlite:///{db_path}")
    with session_scope(engine) as writer:
        draft = writer.get(Draft, seeded.draft_ids[0])
        assert draft is not None
        draft.state = DraftState.DISCARDED
        writer.add(draft)
        writer.flush()  # the write lock is held from here until commit
        with Session(reader) as session:
            assert rv.count_queue(session=session) == 40  # the committed snapshot
    with Session(reader) as session:
        assert rv.count_queue(session=session) == 39
        with pytest.raises(Exception, match="readonly"):
            session.exec(select(Draft).limit(1)).one().body = "x"
            session.commit()
    reader.dispose()


def _page_across_a_discard(engine: Engine, reader: Engine, draft_id: int) -> list[rv.QueueRow]:
    """Read a page while another connection discards a draft between its two steps."""
    with Session(reader) as session:
        assert rv.count_queue(session=session) == 40
        with session_scope(engine) as writer:
            draft = writer.get(Draft, draft_id)
            assert draft is not None
            draft.state = DraftState.DISCARDED
            writer.add(draft)
        page = rv.page_queue(session=session, limit=100)
        assert rv.count_queue(session=session) == 40  # still the snapshot
    with Session(reader) as session:
        assert rv.count_queue(session=session) == 39
    return page


def test_read_engine_session_is_one_snapshot(
    engine: Engine, seeded: SeedResult, db_path: Path
) -> None:
    reader = rv.read_engine(f"sqlite:///{db_path}")
    page = _page_across_a_discard(engine, reader, seeded.draft_ids[3])
    assert {r.state for r in page} <= set(rv.OPEN_STATES) and len(page) == 40
    reader.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_read_engine_session_is_one_snapshot_on_postgres(pg_engine: Engine) -> None:
    seeded = seed(pg_engine, count=40)
    reader = rv.read_engine(str(pg_engine.url.render_as_string(hide_password=False)))
    page = _page_across_a_discard(pg_engine, reader, seeded.draft_ids[3])
    assert {r.state for r in page} <= set(rv.OPEN_STATES) and len(page) == 40
    reader.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_review_on_postgres(pg_engine: Engine) -> None:
    seeded = seed(pg_engine, count=30)
    _, extra = add_ticket(
        pg_engine, sender="x@y.example", subject="after seed", body="b", received_at=utcnow()
    )
    reader = rv.read_engine(str(pg_engine.url.render_as_string(hide_password=False)))
    with Session(reader) as session:
        for sort in rv.SORT_KEYS:
            page = rv.page_queue(session=session, flt=rv.QueueFilter(sort=sort), limit=10)
            assert len(page) == 10
        assert rv.count_queue(session=session) == 31
        assert rv.count_queue(session=session, flt=rv.QueueFilter(search="NORDLICHT")) > 0
        host = _draft(pg_engine, seeded.draft_ids[0]).evidence["entities"][0]["text"]
        tagged = rv.tag_by_pattern(session=session, field_name="entity", value=host)
    assert seeded.draft_ids[0] in tagged and extra > seeded.draft_ids[-1]
    ids = _releasable(pg_engine, seeded)[:6]
    errors: list[Exception] = []

    def rep(name: str) -> None:
        try:
            rv.release(engine=pg_engine, draft_ids=[ids[0]], actor=name, from_address=FROM)
        except rv.ReviewError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rep, args=(f"rep{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(_outbox(pg_engine)) == 1 and len(errors) == 3
    rv.release(
        engine=pg_engine,
        draft_ids=ids[1:],
        actor="a",
        from_address=FROM,
        bulk=True,
        confirm_count=5,
    )
    assert len(_outbox(pg_engine)) == 6
    reader.dispose()
