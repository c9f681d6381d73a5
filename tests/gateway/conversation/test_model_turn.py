"""The model drafter's network call holds no write lock, and never overwrites a rep.

The pipeline commits the template's draft, then asks the model (a real
chat-completions server on 127.0.0.1); while the model "thinks", the test writes to
the same SQLite file with no busy timeout, and in the second test a rep edits the
draft before the model's answer arrives.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from storage.models import Draft, DraftState
from tests.gateway.conversation.test_model_drafts import GROUNDED, draft_for, model_config
from tests.support.chat_server import chat, running_chat_server


def _try_write(engine: Engine) -> str:
    """BEGIN IMMEDIATE with no waiting: 'ok', or SQLite's complaint."""
    conn = sqlite3.connect(str(engine.url.database), timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return "ok"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        conn.close()


def test_the_model_is_asked_after_the_commit(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    seen: dict[str, Any] = {}

    def look(_record: dict[str, Any]) -> None:
        seen["write"] = _try_write(engine)
        with Session(engine) as session:
            stored = session.exec(select(Draft)).all()
            seen["stored"] = [(d.state, d.body[:18]) for d in stored]

    with running_chat_server([chat(GROUNDED)]) as server:
        server.on_request = look
        draft = draft_for(engine, model_config(make_config, server.base_url))
    assert seen["write"] == "ok"  # the front door could have stored mail meanwhile
    assert seen["stored"] and seen["stored"][0][1] == "Hi Dana Whitfield,"  # template first
    assert draft.body == GROUNDED and draft.version == 2
    assert "written by model" in draft.evidence["brief"]["decision"]


def test_a_rep_edit_while_the_model_writes_wins(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    def rep_edits(_record: dict[str, Any]) -> None:
        with Session(engine) as session:
            draft = session.exec(select(Draft)).one()
            draft.body = "Hi Dana, looking at it now. -- Sam"
            draft.version += 1
            draft.updated_by = "sam"
            session.add(draft)
            session.commit()

    with running_chat_server([chat(GROUNDED)]) as server:
        server.on_request = rep_edits
        draft = draft_for(engine, model_config(make_config, server.base_url))
    assert draft.body == "Hi Dana, looking at it now. -- Sam"
    assert draft.updated_by == "sam" and draft.state in (DraftState.DRAFTED, "drafted")
